"""Where plots of benchmarks and simulations go, and how a figure is saved (headless, Agg)."""

from __future__ import annotations

from pathlib import Path

from infra.settings import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "bench-results"


def save_figure(fig, name: str, out_dir: Path | None = None) -> str:
    """Save a matplotlib figure as <out_dir or bench-results>/<name>.png (tight layout) and close it; the path."""
    import matplotlib.pyplot as plt

    folder = out_dir or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
