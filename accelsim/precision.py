"""Numeric formats: the one table of names and bytes per element.

fp8 and int8 are one byte everywhere; which tensors a recipe keeps at which width is a
decision of the model that uses this table (e.g. FP8 training keeps activations in bf16).
"""

from __future__ import annotations

from typing import Literal

Precision = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")
BYTES: dict[str, float] = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0,
                           "int8": 1.0}

# Training runs at these (tf32 and int8 are inference or GEMM-internal formats).
TrainPrecision = Literal["fp32", "bf16", "fp16", "fp8"]
TRAIN_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "fp8")
# Embedding table storage formats of recommendation models.
EmbeddingDtype = Literal["fp32", "fp16", "bf16", "int8", "fp8"]
