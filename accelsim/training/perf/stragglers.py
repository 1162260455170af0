"""The slowest of p devices: a synchronous step runs at its pace.

Devices of one SKU do not run one kernel equally fast: manufacturing variation and each chip's
power and clock management give every device its own sustained rate. Sinha et al. ("Not All
GPUs Are Created Equal: Characterizing Variability in Large-Scale, Accelerator-Rich Systems",
SC22, arXiv 2208.11035v3) ran SGEMM, ResNet-50, BERT, LAMMPS and PageRank on over 90 % of the
GPUs of Summit, Vortex, Longhorn (V100), Frontera (Quadro RTX 5000) and Corona (MI50/MI60):
8 % (max 22 %) average performance *variation* among GPUs of one SKU, with outliers up to
1.5x slower than the median. Their variation is the Tukey-fence range over the median
(hal-uw/gpu_variability_sc22_artifact, plot_script/plot_aggregated.py at bc84e72e:
``range = q3 + 1.5 iqr - (q1 - 1.5 iqr)``, ``percent_variability = range / q2``), i.e. four
interquartile ranges, 4 x 1.349 sigma = 5.40 sigma for a normal spread: 8 % is a coefficient
of variation of 1.5 %, 22 % one of 4.1 %. The spread is per device and static (each GPU's
median over repeated runs); the outliers past the fences are what operators' burn-in and
straggler detection remove (assumption), so the normal body is what a job gets.

Every collective of a training step is a rendezvous: a tensor-parallel collective waits for
the slowest rank of its group, a pipeline runs at its slowest stage's pace and the
data-parallel reduction waits for the slowest pipeline. With a static spread the same device
is the slowest at every rendezvous, so the step's compute runs at the pace of the slowest of
all p devices, whose time per unit of work is, in expectation,

    1 + cv z_p,    z_p = E[max of p standard normals]

(:func:`accelsim.llm.expert_load.expected_max_std_normal`: z_8 = 1.42, z_1024 = 3.25,
z_16384 = 3.97; ~sqrt(2 ln p) for large p). It grows as sqrt(ln p): from 8 to 16,384 devices
by 2.5 cv, 3.8 % at cv = 1.48 %. What it leaves out: per-step jitter that is independent
across ranks (its maximum is paid at every rendezvous and grows with their number, not only
with p) and rare long detours (garbage collection, host noise), which grow linearly in p
while rare (docs/_notes/stragglers.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from accelsim.llm.expert_load import expected_max_std_normal

TUKEY_RANGE_SIGMAS = 4 * 2 * 0.6744897501960817
"""Sinha et al.'s variation (Q3 + 1.5 IQR - (Q1 - 1.5 IQR), i.e. 4 IQR) in standard
deviations of a normal spread: IQR = 2 x 0.6745 sigma, so 5.40 sigma."""


def cv_from_variation(variation: float) -> float:
    """Coefficient of variation of a normal spread whose Tukey-fence range over the median
    is ``variation`` (Sinha et al.'s definition): variation / 5.40."""
    return variation / TUKEY_RANGE_SIGMAS


def expected_max_z(p: Any) -> Any:
    """E[max of p standard normals] for a device count ``p`` (a float or an array of them;
    0 for p <= 1)."""
    if isinstance(p, np.ndarray):
        u, inv = np.unique(np.rint(p).astype(int), return_inverse=True)
        return np.array([expected_max_std_normal(int(k)) for k in u])[inv].reshape(p.shape)
    return expected_max_std_normal(round(float(p)))


def slowest_device_factor(p: Any, cv: Any) -> Any:
    """The slowest of ``p`` devices' time per unit of work over the typical device's,
    1 + cv z_p (module docstring); 1 with cv = 0 or one device."""
    if type(cv) is float and cv == 0.0:
        return 1.0
    if isinstance(cv, np.ndarray) and not cv.any():
        return np.ones_like(cv)
    return 1.0 + cv * expected_max_z(p)


def sqrt_2_ln(p: float) -> float:
    """The large-p asymptote of E[max of p standard normals], sqrt(2 ln p) (an upper bound
    at any p the training rows use)."""
    return math.sqrt(2.0 * math.log(p)) if p > 1 else 0.0
