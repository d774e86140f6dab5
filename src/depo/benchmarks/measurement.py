"""Repeated measurements and their summary: one `Measurement` per benchmark row.

These machines are shared and noisy, so a speed claim is a ratio of two rates taken in the same
process, interleaved (A B, then B A, …) so that load drifting during the run hits both sides alike;
each repeat gives one sample and the summary is the median with the min–max range.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
import torch

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "name": pl.String,
    "value": pl.Float64,
    "unit": pl.String,
    "median": pl.Float64,
    "min": pl.Float64,
    "max": pl.Float64,
    "repeats": pl.Int64,
    "target": pl.String,
    "met": pl.Boolean,
    "details": pl.String,  # JSON object: sizes, settings and the raw figures behind the value
}


@dataclass(frozen=True)
class Target:
    """`value >= bound` or `value <= bound`."""

    comparison: Literal[">=", "<="]
    bound: float

    def met_by(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value >= self.bound if self.comparison == ">=" else value <= self.bound

    def __str__(self) -> str:
        return f"{self.comparison} {self.bound:g}"


@dataclass(frozen=True)
class Measurement:
    """One benchmark figure: its per-repeat samples, summarised by their median.

    Without a target the figure is informational and `met` only says it could be measured; no
    samples (nothing to measure) gives a NaN value and `met` False.
    """

    name: str
    unit: str
    samples: tuple[float, ...]
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan

    @property
    def met(self) -> bool:
        if self.target is None:
            return bool(self.samples) and math.isfinite(self.median)
        return self.target.met_by(self.median)

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.median,
            "unit": self.unit,
            "median": self.median,
            "min": min(self.samples, default=math.nan),
            "max": max(self.samples, default=math.nan),
            "repeats": len(self.samples),
            "target": None if self.target is None else str(self.target),
            "met": self.met,
            "details": json.dumps(self.details, sort_keys=True, default=_plain),
        }


def _plain(value: Any) -> Any:
    """JSON for numpy/torch scalars that slip into details."""
    return value.item() if hasattr(value, "item") else str(value)


def results_frame(measurements: list[Measurement]) -> pl.DataFrame:
    return pl.DataFrame([m.row() for m in measurements], schema=RESULT_SCHEMA)


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """(what `function` returned, its wall time in seconds)."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def interleaved(first: Callable[[], float], second: Callable[[], float], repeats: int) -> list[tuple[float, float]]:
    """`repeats` pairs (first(), second()), after one untimed warm-up call of each.

    Even repeats run `first` first, odd ones `second` first, so a load change during the run
    biases neither side. The warm-up absorbs one-off costs (lazy imports, allocator growth).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    first(), second()
    pairs = []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            a = first()
            b = second()
        else:
            b = second()
            a = first()
        pairs.append((a, b))
    return pairs


def ratios(pairs: list[tuple[float, float]]) -> tuple[float, ...]:
    return tuple(a / b for a, b in pairs)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `n` inside the block (None: left as it is).

    On a machine shared with other work, threads that wait for a descheduled sibling at every op
    make multi-threaded timings swing by orders of magnitude; one thread keeps them comparable.
    """
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
