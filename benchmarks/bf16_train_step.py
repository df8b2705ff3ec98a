"""CPU bf16 autocast training step vs fp32 (what ``train.amp=true`` does on a CPU with native
bf16), timed interleaved in one process: the proxy-scale RTMDet-s at 128 px, batch 8, 1 thread
(what `make tables` trains), and RTMDet-tiny at 320 px, batch 4, 2 threads. Forward under
autocast, assigner and losses in fp32, fused AdamW step, channels-last; fixed random images and
boxes (the step's cost does not depend on their values). Prints the medians of the interleaved
rounds and their ratio. Not part of `make test`.

    python benchmarks/bf16_train_step.py [--rounds 8]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import rtmdet
from rtmdet.losses.build import build_criterion
from rtmdet.models.precision import bf16_support, to_float

PROXY_S = ["model.backbone.widen_factor=0.125", "model.neck.out_channels=32",
           "model.backbone.deepen_factor=0.111111", "model.neck.num_csp_blocks=1",
           "model.head.num_classes=6"]
CASES = [("s-proxy 128 px bs 8, 1 thread", "rtmdet-s", PROXY_S, 128, 8, 1),
         ("tiny 320 px bs 4, 2 threads", "rtmdet-tiny", [], 320, 4, 2)]


def build(preset: str, overrides: list[str], size: int, batch: int):
    cfg = rtmdet.load_config(preset, overrides)
    torch.manual_seed(0)
    model = rtmdet.build_model(cfg).train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    targets = []
    for _ in range(batch):
        xy = torch.rand(6, 2, generator=g) * size * 0.6
        wh = torch.rand(6, 2, generator=g) * size * 0.3 + 8
        targets.append({"boxes": torch.cat([xy, xy + wh], 1),
                        "labels": torch.randint(0, cfg.model.head.num_classes, (6,), generator=g)})
    return model, build_criterion(cfg, model), opt, x, targets


def step(model, criterion, opt, x, targets, bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        outputs = model.forward_raw(x)
    losses = criterion(*to_float(outputs), targets)
    opt.zero_grad(set_to_none=True)
    losses["loss"].backward()
    opt.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    ok, why = bf16_support()
    print(f"native bf16: {ok} ({why})")
    for name, preset, overrides, size, batch, threads in CASES:
        torch.set_num_threads(threads)
        parts = build(preset, overrides, size, batch)
        for bf16 in (False, True):                  # warm-up both paths
            for _ in range(2):
                step(*parts, bf16)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for bf16 in (False, True):
                t0 = time.perf_counter()
                step(*parts, bf16)
                times[bf16].append(time.perf_counter() - t0)
        f, h = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name}: fp32 {1000 * f:.0f} ms, bf16 autocast {1000 * h:.0f} ms, "
              f"speed-up {f / h:.2f}x (median of {args.rounds} interleaved rounds)")


if __name__ == "__main__":
    main()
