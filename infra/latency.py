"""Latency statistics shared by the simulator and the benchmarks (nearest-rank percentiles, in milliseconds)."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency_summary_ms(values_s: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max of latencies given in seconds, in milliseconds (None when there are none)."""
    if not values_s:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    return {"p50": round(1000 * percentile(values_s, 0.5), 1), "p95": round(1000 * percentile(values_s, 0.95), 1),
            "p99": round(1000 * percentile(values_s, 0.99), 1), "max": round(1000 * max(values_s), 1)}
