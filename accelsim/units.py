"""Unit conversions, done once at the edges. Inside accelsim everything is SI.

Decimal prefixes for rates and vendor-quoted sizes (GB/s, TFLOP/s), binary ones
only where the key says so (``memory_GiB``).
"""

from __future__ import annotations

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KiB = 2.0**10
MiB = 2.0**20
GiB = 2.0**30

GFLOP = 1e9
TFLOP = 1e12

US = 1e-6  # one microsecond in seconds
MS = 1e-3  # one millisecond in seconds
HOUR = 3600.0
DAY = 86400.0
YEAR = 365.25 * DAY
HOURS_PER_YEAR = YEAR / HOUR  # 8766
KWH = 3.6e6  # joules

GBIT = 1e9 / 8  # bytes in one gigabit


def gbps_to_Bps(gigabytes_per_s: float) -> float:
    """GB/s (decimal) -> bytes/s."""
    return gigabytes_per_s * GB


def gbit_to_Bps(gigabits_per_s: float) -> float:
    """Gb/s (network line rate) -> bytes/s."""
    return gigabits_per_s * GBIT


def tflops_to_flops(tflops: float) -> float:
    """TFLOP/s -> FLOP/s."""
    return tflops * TFLOP
