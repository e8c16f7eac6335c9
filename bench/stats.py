"""Medians and percentiles without numpy."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the value at or below which `pct` per cent of the samples lie."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


def median_percentile(values: Sequence[float], pct: float, blocks: int) -> float:
    """The median over `blocks` consecutive repetitions of each one's percentile."""
    blocks = max(1, min(blocks, len(values)))
    size = len(values) // blocks
    return median([percentile(values[i * size : (i + 1) * size], pct) for i in range(blocks)])
