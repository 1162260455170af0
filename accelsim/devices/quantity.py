"""Numbers with provenance: every value of a device profile is a :class:`Quantity` with a
source and a confidence (``confidence: assumption`` with the reasoning in ``note``), the
interval it may take (``range``, for uncertainty) and the published runs it was fitted on
(``fitted_on``)."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from accelsim.config import Strict

Confidence = Literal["A", "B", "C", "assumption"]


class Quantity(Strict):
    """A number with its provenance; ``range`` is an optional ``[low, high]`` for uncertainty.

    Subclasses set the admissible interval: ``(low, high]`` or ``[low, high]``.
    """

    low: ClassVar[float] = -math.inf
    high: ClassVar[float] = math.inf
    low_open: ClassVar[bool] = True

    value: float
    """The number, in the unit its key names (memory_GiB in GiB, price_usd in USD)."""
    range: list[float] | None = None
    """Optional [low, high] the sources span; uncertainty draws sample it (triangular)."""
    source: str = Field(min_length=1)
    """Where the number comes from: a datasheet, paper, press report, or the reasoning."""
    confidence: Confidence
    """A vendor or paper, B press or analyst, C sources disagree, or 'assumption'."""
    note: str | None = None
    """Why the number was chosen; required when confidence is 'assumption'."""
    fitted_on: list[str] | None = None
    """Ids of the published runs (``configs/runs``) this number was fitted on: those rows
    are in-sample for it, and ``validate-runs --cross-validate`` refits it without them."""
    fitted_against: dict[str, str] | None = None
    """For a row of ``fitted_on``, the id of a reference run of the same benchmark round,
    software and layout on another device: the fit matches the row's error to the
    reference's (log(predicted / published) of the two equal), so the number measures the
    ratio of the two devices and the model's error common to both on that workload cancels."""

    @model_validator(mode="after")
    def _check(self) -> Quantity:
        if self.value != "unsupported":  # only a Peak may say so (its value type allows it)
            self.check_bounds(float(self.value))
        if self.confidence == "assumption" and not self.note:
            raise ValueError("an 'assumption' needs a 'note' giving the reasoning")
        if self.range is not None:
            if len(self.range) != 2 or not (self.range[0] <= self.value <= self.range[1]):
                raise ValueError(
                    f"range must be [low, high] with low <= value <= high, got {self.range}"
                )
            for bound in self.range:
                self.check_bounds(bound)
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        """The class's admissible interval on ``value`` and ``range`` in the JSON Schema, so
        an editor flags a negative price or an efficiency above 1."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        bounds: dict[str, float] = {}
        if math.isfinite(cls.low):
            bounds["exclusiveMinimum" if cls.low_open else "minimum"] = cls.low
        if math.isfinite(cls.high):
            bounds["maximum"] = cls.high
        props = schema["properties"]
        for sub in props["value"].get("anyOf", [props["value"]]):
            if sub.get("type") == "number":
                sub.update(bounds)
        for sub in props["range"].get("anyOf", [props["range"]]):
            if sub.get("type") == "array":
                sub["items"].update(bounds)
        return schema

    @classmethod
    def check_bounds(cls, v: float) -> float:
        lo_bad = v <= cls.low if cls.low_open else v < cls.low
        if not math.isfinite(v) or lo_bad or v > cls.high:
            lo = "(" if cls.low_open else "["
            hi = "]" if math.isfinite(cls.high) else ")"
            raise ValueError(f"expected a number in {lo}{cls.low:g}, {cls.high:g}{hi}, got {v:g}")
        return v


class Positive(Quantity):
    low = 0.0


class NonNegative(Quantity):
    low = 0.0
    low_open = False


class Fraction(Quantity):
    """An efficiency or probability in (0, 1]."""

    low = 0.0
    high = 1.0


class Count(Quantity):
    """A whole number of things (devices in a scale-up domain), at least 1."""

    low = 1.0
    low_open = False

    @classmethod
    def check_bounds(cls, v: float) -> float:
        super().check_bounds(v)
        if v != int(v):
            raise ValueError(f"expected a whole number, got {v:g}")
        return v


class Peak(Quantity):
    """Dense peak throughput for one precision, or ``value: unsupported``."""

    low = 0.0
    value: float | Literal["unsupported"]  # type: ignore[assignment]
    """Dense peak in TFLOP/s (TOP/s for int8), or 'unsupported'."""

    @property
    def supported(self) -> bool:
        return self.value != "unsupported"


class Provenance(Strict):
    source: str = Field(min_length=1)
    """Where the identity facts come from."""
    confidence: Confidence
    """A vendor or paper, B press or analyst, C sources disagree, or 'assumption'."""
    note: str | None = None
    """Reasoning behind an assumption."""
