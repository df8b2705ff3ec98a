"""onnxruntime parity check for exported graphs (``rtmdet export`` runs it unless ``--no-check``).

An exported graph is only useful if it computes what the torch model computes, so every output
is compared against torch within a relative tolerance, and (for detection, instance and rotated
models) the detections after our own post-processing must be the same set. The reference is
always :mod:`rtmdet.models.postprocess` applied to torch outputs, never a copy of the in-graph decode,
so ``--with-postprocess`` graphs are checked against the real post-processing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rtmdet.models.postprocess import detections_from_raw, finish_detections

from .onnx import DecodedOutputs, flatten_outputs


def ort_session(path: str | Path, threads: int = 0):
    """A CPU onnxruntime session: the reference runtime every exported graph must match (also
    the session of :class:`rtmdet.export.ort_detector.OrtDetector`; ``threads`` 0 = all cores)."""
    import onnxruntime as ort    # lazy: the optional 'onnx' extra

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def same_detections(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]],
                    rel: float = 1e-4) -> bool:
    """Same detections per image: a one-to-one match with equal labels and boxes/scores within
    ``rel · max(1, max|value|)`` (the raw-output tolerance carried through decoding).

    Order is not compared: two detections whose scores differ by less than the tolerance may
    legitimately swap places between runtimes.
    """
    if len(a) != len(b):
        return False
    for da, db in zip(a, b):
        if da["labels"].shape != db["labels"].shape:
            return False
        if not da["labels"].numel():
            continue
        ba, bb = da["boxes"].detach().float(), db["boxes"].detach().float()
        sa, sb = da["scores"].detach().float(), db["scores"].detach().float()
        tol_b = rel * max(1.0, float(ba.abs().max()))
        tol_s = rel * max(1.0, float(sa.abs().max()))
        match = ((da["labels"][:, None] == db["labels"][None, :])
                 & ((ba[:, None] - bb[None, :]).abs().amax(-1) <= tol_b)
                 & ((sa[:, None] - sb[None, :]).abs() <= tol_s))
        taken = torch.zeros(len(sb), dtype=torch.bool)
        for row in match:
            free = torch.nonzero(row & ~taken)
            if not len(free):
                return False
            taken[free[0, 0]] = True
    return True


@torch.no_grad()
def check_parity(model: nn.Module, onnx_path: str | Path, x: torch.Tensor,
                 with_postprocess: bool = False, model_type: str = "det",
                 score_thr: float = 0.001, iou_thr: float = 0.65, max_per_img: int = 300,
                 topk: int = 30000, threads: int = 0) -> dict[str, Any]:
    """Run torch and onnxruntime on ``x``; every output must satisfy
    ``max|ort − torch| ≤ 1e-4 · max(1, max|torch|)`` and (detection models) the detections
    after post-processing must be the same boxes, scores and labels."""
    model = model.eval().float()
    sess = ort_session(onnx_path, threads)
    ort_out = [torch.from_numpy(np.asarray(o)) for o in sess.run(None, {"images": x.numpy()})]
    names = [o.name for o in sess.get_outputs()]
    if with_postprocess:
        ref = list(DecodedOutputs(model, x.shape[-1], topk)(x))
    else:
        ref = flatten_outputs(model.forward_raw(x))
    report: dict[str, Any] = {"outputs": {}, "ok": True}
    for name, r, o in zip(names, ref, ort_out):
        if name in ("boxes", "labels"):
            # Which of several tied candidates top-k lists first is implementation-defined,
            # so these are compared through the detections below; the sorted scores are not
            # affected by tie order and are compared element-wise.
            continue
        diff = float((r - o).abs().max()) if r.numel() else 0.0
        tol = 1e-4 * max(1.0, float(r.abs().max()) if r.numel() else 0.0)
        report["outputs"][name] = {"max_abs_diff": diff, "tol": tol, "ok": diff <= tol}
        report["ok"] &= diff <= tol
    if model_type in ("det", "ins", "rotated"):
        # Reference = our torch post-processing of the torch raw outputs, so an in-graph
        # decode is checked against ``postprocess`` itself, not against a copy of it.
        shape = (x.shape[-2], x.shape[-1])
        args = (model.strides, shape, score_thr, topk, iou_thr, max_per_img)
        raw = ref if not with_postprocess else flatten_outputs(model.forward_raw(x))
        want = detections_from_raw(model_type, raw, *args)
        if with_postprocess:
            got = finish_detections(*ort_out, score_thr, iou_thr, max_per_img)
        else:
            got = detections_from_raw(model_type, ort_out, *args)
        same = same_detections(want, got)
        report["detections"] = {"torch": [len(d["labels"]) for d in want],
                                "onnxruntime": [len(d["labels"]) for d in got], "same": same}
        report["ok"] &= same
    return report
