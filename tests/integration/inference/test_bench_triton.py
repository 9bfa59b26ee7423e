"""`centralita bench triton --quick` runs end to end on its own Triton (figures are read, not asserted)."""

from tests.bench import bench_triton


def test_quick_run_reports_both_configurations_and_the_client() -> None:
    report = bench_triton.run(quick=True)
    assert set(report["concurrency"]) == {"dynamic_batching", "no_batching"}
    for points in report["concurrency"].values():
        assert all(p["requests_per_s"] > 0 and p["p99_ms"] >= p["p50_ms"] > 0 for p in points.values())
    assert report["client"]["micro_batching"]["messages_per_s"] > 0
    assert report["at_same_p99_budget"]["p99_budget_ms"] > 0 and report["plot"].endswith("triton.png")
