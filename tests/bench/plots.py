"""Plots for benchmark results: a bar chart of one figure per variant, saved next to the JSON."""

from __future__ import annotations

from pathlib import Path

from infra.plots import RESULTS_DIR, save_figure

__all__ = ["bar_chart", "save_figure"]


def bar_chart(name: str, results: dict[str, float], unit: str) -> str:
    """Save a horizontal bar chart of `results` to bench-results/<name>.png and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.png"
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(results) + 1.2))
    variants = list(results)
    ax.barh(variants, [results[v] for v in variants], color="#3b7dd8")
    for y, variant in enumerate(variants):
        ax.text(results[variant], y, f" {results[variant]:,.0f}", va="center")
    ax.set_xlabel(unit)
    ax.set_title(f"centralita bench {name}")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(Path(path))
