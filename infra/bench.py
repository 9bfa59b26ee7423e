"""Benchmark discovery and running: every `tests/bench/bench_<name>.py` is one benchmark.

A benchmark module defines `DESCRIPTION` and `run(quick: bool) -> dict` returning
`{"bench": NAME, "unit": ..., "results": {variant: figure, ...}, ...}`. Benchmarks print JSON and never
fail a test run; speed targets are read off their output, not asserted in tests.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from infra.settings import PROJECT_ROOT

BENCH_DIR = PROJECT_ROOT / "tests" / "bench"


def available() -> dict[str, Path]:
    """Benchmark name -> module file."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(BENCH_DIR.glob("bench_*.py"))}


def load(name: str) -> ModuleType:
    """Import a benchmark module by name; KeyError lists the known ones."""
    benches = available()
    if name not in benches:
        raise KeyError(f"no benchmark {name!r}; available: {', '.join(benches) or 'none'}")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))  # benchmarks live in the checkout's tests/bench package
    return importlib.import_module(f"tests.bench.bench_{name}")
