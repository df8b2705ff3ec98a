"""What ``rtmdet eval`` prints: the COCO summary in the 12-line layout every detection user
knows from pycocotools (the evaluation runs with its own output silenced), then per-class AP as
a table — instead of one JSON line."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

# (stat key, metric, IoU, area, maxDets) in pycocotools' summarize() order
_LINES = (("AP", "Average Precision", "0.50:0.95", "all", 100),
          ("AP50", "Average Precision", "0.50", "all", 100),
          ("AP75", "Average Precision", "0.75", "all", 100),
          ("APs", "Average Precision", "0.50:0.95", "small", 100),
          ("APm", "Average Precision", "0.50:0.95", "medium", 100),
          ("APl", "Average Precision", "0.50:0.95", "large", 100),
          ("AR1", "Average Recall", "0.50:0.95", "all", 1),
          ("AR10", "Average Recall", "0.50:0.95", "all", 10),
          ("AR100", "Average Recall", "0.50:0.95", "all", 100),
          ("ARs", "Average Recall", "0.50:0.95", "small", 100),
          ("ARm", "Average Recall", "0.50:0.95", "medium", 100),
          ("ARl", "Average Recall", "0.50:0.95", "large", 100))


def coco_summary_text(stats: dict[str, float]) -> str:
    """pycocotools' summary lines for a stats dict of :data:`rtmdet.evaluation.coco.STAT_NAMES`."""
    out = []
    for key, name, iou, area, dets in _LINES:
        short = "(AP)" if name.startswith("Average P") else "(AR)"
        out.append(f" {name:<18} {short} @[ IoU={iou:<9} | area={area:>6} | maxDets={dets:>3} ]"
                   f" = {stats.get(key, -1.0):.3f}")
    return "\n".join(out)


def per_class_table(rows: list[dict[str, Any]], title: str, key: str = "AP") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("class")
    table.add_column(key, justify="right")
    for r in rows:
        v = r.get(key, r.get(key.lower()))
        table.add_row(str(r["name"]), "n/a (no gt)" if v is None or v != v or v < 0 else f"{v:.3f}")
    return table


def print_coco_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(soft_wrap=True)
    s = report["test_settings"]
    console.print(f"{report['setting']} test setting: score > {s['score_thr']}, NMS IoU "
                  f"{s['iou_thr']}, top {s['max_per_img']}; {report['num_images']} images, "
                  f"{report['num_detections']} detections", markup=False)
    console.print("bbox\n" + coco_summary_text(report["metrics"]), markup=False, highlight=False)
    if "segm_metrics" in report:
        console.print("segm\n" + coco_summary_text(report["segm_metrics"]), markup=False,
                      highlight=False)
    console.print(per_class_table(report["per_class"], "per-class bbox AP (IoU 0.50:0.95)"))
    if "segm_per_class" in report:
        console.print(per_class_table(report["segm_per_class"], "per-class mask AP"))
