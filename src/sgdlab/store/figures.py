"""Saving a figure: the PNG a report embeds and the SVG beside it (same name), for papers and
for zooming in. Every figure sgdlab draws is saved here, so every PNG has its SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write the matplotlib figure `fig` to `path` (as .png) and to the .svg beside it, then
    close it; returns the PNG's path."""
    import matplotlib.pyplot as plt

    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path
