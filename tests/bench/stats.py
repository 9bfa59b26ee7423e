"""Small statistics shared by the benchmarks (percentiles live with the simulator's, in infra.latency)."""

from __future__ import annotations

from infra.latency import percentile

__all__ = ["percentile", "rate_and_latency"]


def rate_and_latency(latencies_s: list[float], elapsed_s: float, rate_name: str) -> dict[str, float]:
    """{rate_name: completions per second, p50_ms, p99_ms} of a closed-loop run."""
    return {rate_name: round(len(latencies_s) / elapsed_s, 1), "p50_ms": round(percentile(latencies_s, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies_s, 0.99) * 1000, 2)}
