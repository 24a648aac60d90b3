"""Loss curves as PNG, from a trainer's `log_history` (matplotlib's Agg renderer, no display)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_log_history(history: list[dict], series: list[str], title: str, path: Path) -> Path:
    """One line per logged key in `series` (e.g. `loss`, `eval_loss`, `rewards/margins`) against the step."""
    figure = Figure(figsize=(6.4, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for key in series:
        points = [(entry["step"], entry[key]) for entry in history if key in entry and "step" in entry]
        if points:
            axes.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3, label=key)
    axes.set_xlabel("step")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    return path
