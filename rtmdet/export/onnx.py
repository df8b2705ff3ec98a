"""ONNX export of the forward pass (``rtmdet export``); the onnxruntime parity check that the
CLI runs afterwards lives in :mod:`rtmdet.export.parity`.

Default graph = the raw head outputs, one named tensor per level (``cls_score_s8``,
``bbox_pred_s8``, …: logits and distances in pixels). That is exactly what the paper's latency
protocol times (forward only) and what :func:`rtmdet.models.postprocess.postprocess` consumes, so
deployments can reuse our post-processing bit for bit.

``--with-postprocess`` appends decoding in-graph: prior points (constants for the exported
input size), sigmoid, multi-label per-level top-k and box decode clipped to the canvas,
giving ``boxes`` (N, K, 4), ``scores`` (N, K), ``labels`` (N, K). **NMS stays outside the
graph**: class-wise NMS with a per-image cap has data-dependent shapes, and ONNX's
``NonMaxSuppression`` differs across runtimes (TensorRT needs a plugin), so the graph ends at
candidates and :func:`rtmdet.models.postprocess.finish_detections` (or any class-wise NMS)
does threshold + NMS + top-N.
Candidates are the same set :func:`postprocess` keeps before NMS, so detections are identical.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rtmdet.geometry.boxes import make_priors
from rtmdet.utils.io import atomic_write_bytes

# Names of the groups ``forward_raw`` returns, per model type; a list group becomes one
# output per level (``<name>_s<stride>``), a tensor group one output.
OUTPUT_GROUPS: dict[str, tuple[str, ...]] = {
    "det": ("cls_score", "bbox_pred"),
    "ins": ("cls_score", "bbox_pred", "kernel_pred", "mask_feat"),
    "rotated": ("cls_score", "bbox_pred", "angle_pred"),
}


def flatten_outputs(raw: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for group in raw:
        out.extend(group if isinstance(group, (list, tuple)) else [group])
    return out


def output_names(model: nn.Module, model_type: str, size: int = 64) -> list[str]:
    """Output names for ``model``'s flattened ``forward_raw`` (probed on a tiny input)."""
    groups = OUTPUT_GROUPS.get(model_type, ())
    p = next(model.parameters())
    was_training = model.training
    model.eval()
    with torch.no_grad():
        raw = model.forward_raw(torch.zeros(1, 3, size, size, dtype=p.dtype, device=p.device))
    model.train(was_training)
    names = []
    for g, group in enumerate(raw):
        base = groups[g] if g < len(groups) else f"out{g}"
        if isinstance(group, (list, tuple)):
            names += [f"{base}_s{s}" for s in model.strides[:len(group)]]
        else:
            names.append(base)
    return names


def model_hash(model: nn.Module, extra: str = "") -> str:
    """Content hash of the weights (and ``extra``: size, batch…) to key cached artefacts."""
    h = hashlib.sha256(extra.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class RawOutputs(nn.Module):
    """``forward_raw`` with its nested lists flattened: ONNX graphs have flat named outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(flatten_outputs(self.model.forward_raw(x)))


class DecodedOutputs(nn.Module):
    """Forward + decode + per-level multi-label top-k, for a fixed input size.

    Mirrors :func:`rtmdet.models.postprocess.postprocess` up to (not including) the score threshold
    and NMS: for each level the ``topk`` best (prior, class) pairs by sigmoid score, their
    class and their decoded box clipped to the input canvas.
    """

    def __init__(self, model: nn.Module, size: int, topk: int) -> None:
        super().__init__()
        self.model = model
        self.size = size
        self.sizes = [(size // s, size // s) for s in model.strides]
        self.topk = [min(topk, h * w * model.num_classes) for h, w in self.sizes]
        priors, _ = make_priors(self.sizes, model.strides)
        self.register_buffer("priors", priors, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_scores, bbox_preds = self.model.forward_raw(x)[:2]
        boxes_l, scores_l, labels_l = [], [], []
        start = 0
        for cls, reg, k in zip(cls_scores, bbox_preds, self.topk):
            n, c, h, w = cls.shape
            scores = cls.permute(0, 2, 3, 1).reshape(n, h * w * c).sigmoid()
            dists = reg.permute(0, 2, 3, 1).reshape(n, h * w, 4)
            vals, idx = scores.topk(k, dim=1)                   # sorted, descending
            prior = idx // c
            dist = torch.gather(dists, 1, prior.unsqueeze(-1).expand(n, k, 4))
            pts = self.priors[start:start + h * w][prior]       # (n, k, 2)
            start += h * w
            box = torch.cat([pts - dist[..., :2], pts + dist[..., 2:]], dim=-1)
            boxes_l.append(box.clamp(min=0, max=self.size))
            scores_l.append(vals)
            labels_l.append(idx % c)
        return torch.cat(boxes_l, 1), torch.cat(scores_l, 1), torch.cat(labels_l, 1)


def export_onnx(model: nn.Module, path: str | Path, size: int = 640, batch: int = 1,
                opset: int = 17, dynamic_batch: bool = False, with_postprocess: bool = False,
                model_type: str = "det", topk: int = 30000) -> dict[str, Any]:
    """Write the ONNX graph (atomically) and return its metadata (input/output names)."""
    import onnx    # lazy: the optional 'onnx' extra

    model = model.eval().float()
    if with_postprocess:
        if model_type != "det":
            raise ValueError(f"--with-postprocess supports detection models only, "
                             f"not model.type={model_type!r}")
        wrapper: nn.Module = DecodedOutputs(model, size, topk).eval()
        names = ["boxes", "scores", "labels"]
    else:
        wrapper = RawOutputs(model).eval()
        names = output_names(model, model_type)
    x = torch.zeros(batch, 3, size, size)
    dynamic = ({n: {0: "batch"} for n in ["images", *names]} if dynamic_batch else None)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation + tracer notes
        # dynamo=False: the TorchScript exporter needs no onnxscript and traces our plain
        # convolutional graph exactly.
        torch.onnx.export(wrapper, (x,), buf, dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=names,
                          dynamic_axes=dynamic, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(path, buf.getvalue())
    return {"path": str(path), "inputs": ["images"], "outputs": names, "opset": opset,
            "size": size, "batch": "dynamic" if dynamic_batch else batch,
            "with_postprocess": with_postprocess}
