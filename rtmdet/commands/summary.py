"""What a user reads at the end of ``rtmdet train``: one table with the final and best
validation metric, every file written (with its size) and the MLflow run id — instead of a
bare ``wrote …/final.pt`` that said nothing about how the run went."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _size(path: Path) -> str:
    n = path.stat().st_size
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def train_summary_rows(trainer: Any, final: Path) -> list[tuple[str, str]]:
    """(field, value) rows of the summary; separate from printing so tests read them."""
    cfg = trainer.cfg
    rows = [("model", f"{cfg.name} ({cfg.model.type})"),
            ("run folder", str(trainer.work_dir)),
            ("trained", f"{trainer.epoch} epochs, {trainer.global_iter} iterations")]
    val = trainer.validation
    if trainer.last_val is not None:
        rows.append((f"final {trainer.last_val['metric']}",
                     f"{trainer.last_val['value']:.4f} (epoch {trainer.last_val['epoch']})"))
    if val is not None and val.best_epoch is not None:
        rows.append((f"best {val.metric}", f"{val.best:.4f} (epoch {val.best_epoch}, best.pt)"))
    if val is None:
        rows.append(("validation", "off (train.val_interval=0); score with "
                                   f"`rtmdet eval --weights {final}`"))
    for p in trainer.files:
        rows.append(("file", f"{p}  ({_size(p)})"))
    rows.append(("MLflow run", trainer.mlflow_run_id or "- (not tracked; --mlflow to record)"))
    return rows


def print_train_summary(trainer: Any, final: Path, console: Console | None = None) -> None:
    table = Table(title="rtmdet train: summary", show_header=False, title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("", overflow="fold")
    for k, v in train_summary_rows(trainer, final):
        table.add_row(k, v)
    (console or Console(soft_wrap=False)).print(table)
