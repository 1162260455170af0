"""DLRM-family recommendation models: embedding table groups, the feature interaction and
the MLPs, with their shapes per item (lookups, embedding bytes, dense layers, FLOPs);
loaded from the zoo (``configs/models``) or a path. Their service time on a device:
:mod:`accelsim.serving.recsys`."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from accelsim.config import Strict, Width, load
from accelsim.precision import BYTES, EmbeddingDtype, Precision


class TableGroup(Strict):
    """``count`` embedding tables of ``rows`` x ``dim``; ``pooling`` lookups per item each."""

    count: int = Field(ge=1, le=100_000)
    """Embedding tables of this shape."""
    rows: int = Field(ge=1, le=10**13)
    """Rows per table."""
    dim: int = Field(ge=1, le=100_000)
    """Embedding vector width."""
    pooling: float = Field(gt=0, le=100_000)
    """Mean lookups pooled per table per item (multi-hot)."""
    spread: float = Field(default=1.0, ge=1, le=100_000)
    """Distinct rows one popular id's lookups touch: 1 when the pooled lookups are
    independent draws from the popularity law (DeepRecSys); ``pooling`` for MLPerf's
    synthetic multi-hot Criteo, where each one-hot id maps to that many fixed random rows
    (torchrec ``Multihot``), so caching a popular id costs ``spread`` rows."""


class Interaction(Strict):
    kind: Literal["cat", "dot", "dcnv2"]
    """Feature interaction: cat (concatenate), dot (DLRM pairwise dots) or dcnv2 (cross network)."""
    cross_layers: int = Field(default=0, ge=0, le=100)
    """Cross layers (dcnv2)."""
    low_rank: int | None = Field(default=None, ge=1, le=100_000)
    """Low-rank width of each cross layer (dcnv2); default full rank."""

    @model_validator(mode="after")
    def _dcn(self) -> Interaction:
        if self.kind == "dcnv2" and self.cross_layers < 1:
            raise ValueError("dcnv2 needs cross_layers >= 1")
        return self


class RecModel(Strict):
    """A DLRM-family ranking model."""

    name: str
    """Name shown in outputs."""
    description: str = ""
    """Free text."""
    source: str = Field(min_length=1)
    """Where the architecture comes from (paper, MLPerf reference) or the assumption."""
    dense_features: int = Field(ge=0, le=1_000_000)
    """Dense (continuous) input features."""
    bottom_mlp: list[Width] = Field(default_factory=list)
    """Widths of the bottom MLP over dense features."""
    top_mlp: list[Width] = Field(min_length=1)
    """Widths of the top MLP after the interaction (last is the output)."""
    tables: list[TableGroup] = Field(min_length=1)
    """Embedding table groups."""
    embedding_dtype: EmbeddingDtype = "fp32"
    """Element type of the embedding tables."""
    mlp_precision: Precision = "fp32"
    """Precision of the MLP GEMMs."""
    interaction: Interaction = Interaction(kind="cat")
    """How dense and sparse features interact."""
    zipf_alpha: float = Field(default=1.05, ge=0.0, le=3.0)
    """Skew of row popularity (Zipf exponent); sets the on-chip cache hit rate."""
    index_bytes: Literal[4, 8] = 8
    """Bytes per sparse index copied from the host (4 or 8)."""
    serial_kernels: bool = False
    """The served engine runs every kernel of every batch in order on one compute stream
    (one execution context per device: a batch's gathers, GEMMs and elementwise kernels
    do not overlap each other or the next batch's), so a batch's pipelined period is the sum
    of its kernels' times, copies overlapped. False: the stages of consecutive batches
    overlap on separate streams and the busiest shared resource sets the period
    (:func:`accelsim.serving.recsys.offline_period`)."""

    @model_validator(mode="after")
    def _mlp(self) -> RecModel:
        if self.interaction.kind == "dot":
            dims = {t.dim for t in self.tables}
            out = self.bottom_mlp[-1] if self.bottom_mlp else self.dense_features
            if len(dims) != 1 or out not in dims:
                raise ValueError(
                    "dot interaction needs one embedding dim equal to the bottom MLP output")
        if any(w < 1 for w in self.bottom_mlp + self.top_mlp):
            raise ValueError("MLP widths must be >= 1")
        return self

    # ---- shapes
    @property
    def n_tables(self) -> int:
        return sum(t.count for t in self.tables)

    @property
    def lookups_per_item(self) -> float:
        return sum(t.count * t.pooling for t in self.tables)

    @property
    def embedding_bytes(self) -> float:
        b = BYTES[self.embedding_dtype]
        return float(sum(t.count * t.rows * t.dim * b for t in self.tables))

    def interaction_out(self) -> int:
        bottom_out = self.bottom_mlp[-1] if self.bottom_mlp else self.dense_features
        emb = sum(t.count * t.dim for t in self.tables)
        if self.interaction.kind == "dot":
            nf = self.n_tables + 1
            return bottom_out + nf * (nf - 1) // 2
        return bottom_out + emb

    def mlp_layers(self) -> list[tuple[int, int]]:
        """(d_in, d_out) of every dense layer, bottom then top."""
        dims = [self.dense_features, *self.bottom_mlp] if self.bottom_mlp else []
        layers = list(itertools.pairwise(dims))
        top = [self.interaction_out(), *self.top_mlp]
        return layers + list(itertools.pairwise(top))

    def flops_per_item(self) -> float:
        f = sum(2.0 * a * b for a, b in self.mlp_layers())
        ia = self.interaction
        if ia.kind == "dot":
            nf = self.n_tables + 1
            f += 2.0 * nf * nf * self.tables[0].dim
        elif ia.kind == "dcnv2":
            d = self.interaction_out()
            per = 4.0 * d * ia.low_rank if ia.low_rank else 2.0 * d * d
            f += ia.cross_layers * per
        return f


def load_model(ref: str | Path, relative_to: str | Path | None = None, where: str = "service",
               field: str = "model") -> RecModel:
    """A zoo name (``rmc2``) or a path to a model YAML (:func:`accelsim.refs.find`)."""
    from accelsim import refs

    path = refs.find(ref, "models", relative_to, where, field, family="recsys",
                     what="recommendation model")
    from accelsim.config import read_yaml

    refs.check_family(read_yaml(path), "recsys", path, where, field)
    return load(RecModel, path)
