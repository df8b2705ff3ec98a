"""The run folder's ``loss_curve.png``: the loss terms over iterations, written (atomically)
when training ends, so a finished run can be judged at a glance without MLflow."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rtmdet.utils.io import atomic_save_figure, pyplot


def plot_loss_curve(history: list[dict[str, Any]], path: Path) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    its = [h["global_iter"] for h in history]
    for key in ("loss", "loss_cls", "loss_bbox"):
        ax.plot(its, [h[key] for h in history], label=key, lw=1)
    ax.set(xlabel="iteration", ylabel="loss", title="training loss")
    ax.legend()
    fig.tight_layout()
    return atomic_save_figure(fig, path)
