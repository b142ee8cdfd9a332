"""Figures: medians over repeated runs with min and max, percentiles, same-run ratios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0-100) by linear interpolation (numpy's default method)."""
    if not values:
        raise ValueError("no values")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


@dataclass(slots=True)
class Figure:
    """One measured quantity: the median of ``runs`` repeated measurements, with min and max."""

    name: str
    unit: str
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    def add(self, value: float) -> None:
        self.runs.append(float(value))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "runs": self.runs,
        }

    def text(self, digits: int = 2) -> str:
        """``median (min-max) unit``, the form every figure of the report takes."""
        fmt = f"{{:.{digits}f}}"
        return (
            f"{fmt.format(self.median)} {self.unit} "
            f"(min {fmt.format(self.min)}, max {fmt.format(self.max)}, n={len(self.runs)})"
        )


def ratio_figure(name: str, numerators: Figure, denominators: Figure) -> Figure:
    """Per-run ratios (run i of the numerator over run i of the denominator, same run)."""
    if len(numerators.runs) != len(denominators.runs):
        raise ValueError("ratios pair runs measured together: counts differ")
    fig = Figure(name, "x")
    for a, b in zip(numerators.runs, denominators.runs, strict=True):
        fig.add(a / b if b else float("inf"))
    return fig


@dataclass(slots=True)
class Latencies:
    """Latencies (seconds) of the requests of one run."""

    samples: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        return percentile(self.samples, q)


def time_calls(call: Callable[[], Any], count: int) -> Latencies:
    """Call ``call`` ``count`` times, timing each call (perf_counter)."""
    lat = Latencies()
    for _ in range(count):
        start = time.perf_counter()
        call()
        lat.samples.append(time.perf_counter() - start)
    return lat


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Figure):
        return value.as_dict()
    if hasattr(value, "__dataclass_fields__"):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value
