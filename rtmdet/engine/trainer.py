"""Training loop (``rtmdet train CONFIG [key=value ...] [--resume]``, :mod:`rtmdet.commands.train`).

One :class:`Trainer` owns model, EMA, optimiser, LR schedule, data and checkpoints. What makes
it reproducible: every random choice comes from seeded generators whose state is checkpointed
(torch RNG, the dataset's numpy generator and Mosaic/MixUp caches, the sampler's epoch and
position), so a run stopped at any iteration and resumed with ``--resume`` ends bit-identical to
an uninterrupted one on CPU with ``data.num_workers=0`` (``tests/engine/test_train.py``). With worker
processes each worker reseeds per epoch, so resuming from an epoch boundary stays exact.

Files of a run folder: ``last.pt`` is the one full checkpoint (everything above, for
``--resume``); ``final.pt`` and ``best.pt`` (with ``train.val_interval``) hold only the EMA
weights, the config and the class names — what eval/predict/export need, a quarter of the size.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from rtmdet.config import Config, ConfigError, config_hash, save_config
from rtmdet.data.bad_input import summarize
from rtmdet.data.loader import build_train_dataset, collate
from rtmdet.data.preprocess import normalize
from rtmdet.data.stages import stage_for_epoch
from rtmdet.losses.build import build_criterion
from rtmdet.models.build import build_model
from rtmdet.models.precision import resolve_dtype, to_float
from rtmdet.models.pretrained import load_init_from
from rtmdet.models.weights import save_weights
from rtmdet.utils.device import resolve_device
from rtmdet.utils.io import atomic_torch_save, atomic_write_text, csv_text, load_checkpoint

from . import distributed as D
from .divergence import DivergenceGuard, grad_norm, non_finite_tensors
from .ema import ModelEMA, unwrap
from .loss_curve import plot_loss_curve
from .optim import LRSchedule, build_optimizer
from .tracking import RunLogger, git_sha
from .validation import PeriodicValidation, ValidateFn

log = logging.getLogger(__name__)
METRIC_FIELDS = ("epoch", "iter", "global_iter", "lr", "loss_cls", "loss_bbox", "loss", "sec_per_iter")


class StopTraining(Exception):
    """Raised by ``stop_at_iter`` to simulate a job killed mid-run (tests)."""


class Trainer:
    def __init__(self, cfg: Config, work_dir: str | Path | None = None, resume: bool = False,
                 mlflow: bool = False, stop_at_iter: int | None = None,
                 validate: ValidateFn | None = None) -> None:
        self.cfg = cfg
        self.work_dir = Path(work_dir or cfg.work_dir)
        self.device = resolve_device(cfg.train.device)
        self.rank, self.world, local_rank = D.init_distributed(self.device)
        if self.device == "cuda" and self.world > 1:
            self.device = f"cuda:{local_rank}"
        self.stop_at_iter = stop_at_iter
        # Read (and check) the checkpoint first: a corrupt or foreign last.pt fails in a
        # second, not after the model and the dataset were built.
        ckpt = self._read_resume(self.work_dir / "last.pt") if resume else None
        self.mlflow, self.resume = mlflow and D.is_main(), resume
        self.mlflow_run_id: str | None = None
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, seed=cfg.seed).to(self.device)   # paired init streams
        if cfg.train.channels_last:          # 7–21 % faster steps on CPU (benchmarks/train_step.py)
            model = model.to(memory_format=torch.channels_last)
        if cfg.train.init_from and not resume:
            self._init_from(model, cfg.train.init_from)
        if cfg.train.sync_bn and self.world > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self.ddp = (nn.parallel.DistributedDataParallel(model, device_ids=None if self.device == "cpu"
                                                        else [local_rank])
                    if self.world > 1 else None)
        self.criterion = build_criterion(cfg, model)
        t = cfg.train
        self.stage = 1
        self.dataset = build_train_dataset(cfg, stage=1)
        self.sampler = D.ShardedEpochSampler(len(self.dataset), cfg.seed, self.rank, self.world)
        self.iters_per_epoch = math.ceil(self.sampler.per_rank() / t.batch_size)
        if t.max_iters_per_epoch:
            self.iters_per_epoch = min(self.iters_per_epoch, t.max_iters_per_epoch)
        self.optimizer = build_optimizer(model, t, t.batch_size * self.world)
        self.schedule = LRSchedule.from_config(self.optimizer, t, self.iters_per_epoch)
        self.ema = ModelEMA(model, t.ema_momentum, t.ema_warmup) if t.ema else None
        # train.amp: fp16 + loss scaling on CUDA; bf16 autocast on a CPU with native bf16 (no
        # scaler: bf16 has fp32's range), fp32 with one log line on a CPU without it.
        self.amp = t.amp and self.device.startswith("cuda")
        self.cpu_bf16 = (t.amp and self.device == "cpu"
                         and resolve_dtype("bf16", "cpu") == "bf16")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.epoch, self.iter_in_epoch, self.global_iter = 0, 0, 0
        self.history: list[dict[str, Any]] = []
        self.guard = DivergenceGuard(t.nan_policy, t.max_skipped_steps, self.work_dir)
        self.bad_input = Counter(self.dataset.source.bad.counts)   # + image-level, per batch
        self.validation = (PeriodicValidation(validate, t.val_interval)
                           if validate is not None and t.val_interval else None)
        self.files: list[Path] = []              # what fit() wrote, for the summary
        self.last_val: dict[str, Any] | None = None   # the latest validation, for the summary
        if ckpt is not None:
            self._load_state(self.work_dir / "last.pt", ckpt)

    @staticmethod
    def _init_from(model: nn.Module, path: str) -> None:
        """Start from another checkpoint (ours or official mmdet, EMA weights preferred): every
        tensor whose name and shape match is copied — e.g. RTMDet-R from a COCO RTMDet, whose
        angle conv and 15-class classifier then start fresh (SPEC §10). A backbone-only
        checkpoint (the official CSPNeXt ImageNet classifiers, see
        :mod:`rtmdet.models.pretrained`) fills the backbone only."""
        report = load_init_from(model, path)
        log.info("init_from %s: %d tensors loaded, %d new (%s), %d unused", path,
                 len(report["loaded"]), len(report["new"]), ", ".join(report["new"][:6]),
                 len(report["unused"]))

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "state_dict": self.model.state_dict(),
            "ema_state_dict": self.ema.module.state_dict() if self.ema else None,
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "dataset": self.dataset.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch, "iter_in_epoch": self.iter_in_epoch,
            "global_iter": self.global_iter, "stage": self.stage,
            "history": self.history,
            "validation": self.validation.state_dict() if self.validation else None,
            "config": self.cfg.to_dict(),
            "meta": self._meta(),
        }

    def _meta(self) -> dict[str, Any]:
        return {"classes": list(getattr(self.dataset.source, "classes", [])),
                "git_sha": git_sha(), "config_hash": config_hash(self.cfg),
                "world_size": self.world, "epoch": self.epoch, "global_iter": self.global_iter}

    def save(self, name: str) -> Path:
        state = self.state()
        bad = non_finite_tensors({"model": state["state_dict"], "ema": state["ema_state_dict"] or {}})
        if bad:                              # e.g. BatchNorm statistics of a diverged forward
            raise self.guard.error(f"{len(bad)} weight tensors are not finite (e.g. {bad[0]}), "
                                   f"{name} not written", self.global_iter)
        path = atomic_torch_save(self.work_dir / name, state)
        self._write_metrics()
        return path

    def save_weights(self, name: str, **meta: Any) -> Path:
        """A weights-only checkpoint (EMA weights when EMA is on): what eval/predict/export load."""
        model = self.ema.module if self.ema else unwrap(self.model)
        return save_weights(self.work_dir / name, model, self.cfg.to_dict(),
                            {**self._meta(), "weights": "ema" if self.ema else "model", **meta})

    def load(self, path: Path) -> None:
        self._load_state(path, self._read_resume(path))

    def _read_resume(self, path: Path) -> dict[str, Any]:
        if not path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        ckpt = load_checkpoint(path)
        if not {"state_dict", "optimizer", "meta", "history"} <= ckpt.keys():
            raise ConfigError(f"{path}: not a training checkpoint of `rtmdet train` (--resume "
                              "needs a last.pt)")
        if ckpt["meta"].get("config_hash") != config_hash(self.cfg):
            raise ConfigError(f"{path}: saved with a different config; resume needs the same one "
                              "(or train into another --work-dir)")
        return ckpt

    def _load_state(self, path: Path, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["state_dict"])
        if self.ema and ckpt.get("ema"):
            self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.iter_in_epoch = ckpt["epoch"], ckpt["iter_in_epoch"]
        self.global_iter, self.history = ckpt["global_iter"], ckpt["history"]
        if self.validation:
            self.validation.load_state_dict(ckpt.get("validation"))
        if ckpt["stage"] != self.stage:
            self._switch_stage(ckpt["stage"])
        self.dataset.load_state_dict(ckpt["dataset"])
        torch.set_rng_state(ckpt["torch_rng"])
        log.info("resumed from %s at epoch %d iter %d", path, self.epoch, self.iter_in_epoch)

    def _write_metrics(self) -> None:
        fields = list(dict.fromkeys(k for row in self.history for k in row)) or list(METRIC_FIELDS)
        atomic_write_text(self.work_dir / "metrics.csv", csv_text(self.history, fields))

    # ------------------------------------------------------------------ loop
    def _switch_stage(self, stage: int) -> None:
        """Rebuild the dataset for ``stage`` (:mod:`rtmdet.data.stages`)."""
        self.stage = stage
        self.dataset = build_train_dataset(self.cfg, stage=stage)

    def _loader(self) -> DataLoader:
        self.sampler.set_epoch(self.epoch, self.iter_in_epoch * self.cfg.train.batch_size)
        self.dataset.set_epoch(self.epoch)
        return DataLoader(self.dataset, batch_size=self.cfg.train.batch_size, sampler=self.sampler,
                          num_workers=self.cfg.data.num_workers, collate_fn=collate)

    def train_step(self, images: torch.Tensor, targets: list[dict[str, Any]]) -> dict[str, float]:
        self.schedule.step()
        x = normalize(images.to(self.device, non_blocking=True))
        if self.cfg.train.channels_last:     # no-op for the loader's batches (already NHWC)
            x = x.contiguous(memory_format=torch.channels_last)
        for t in targets:
            self.bad_input.update(t.get("bad_input", {}))
        targets = [{k: v.to(self.device) for k, v in t.items() if isinstance(v, torch.Tensor)}
                   for t in targets]
        net, it = self.ddp or self.model, self.global_iter + 1
        self.guard.before_forward(self.model)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
            outputs = net(x)                 # the model's raw outputs (2 for det, 3 R, 4 Ins)
        # the assigner and losses in fp32 (rtmdet.models.precision.to_float says why)
        losses = self.criterion(*(to_float(outputs) if self.cpu_bf16 else outputs), targets)
        self.optimizer.zero_grad(set_to_none=True)
        if self.world == 1 and not self.guard.step_ok("loss", losses["loss"], it, self.model):
            return {k: float(v.detach()) for k, v in losses.items()} | {"skipped": 1}
        self.scaler.scale(losses["loss"]).backward()
        norm = None
        if self.cfg.train.grad_clip:
            self.scaler.unscale_(self.optimizer)
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        elif not self.amp:
            norm = grad_norm(self.model)
        if norm is not None and not self.amp and not self.guard.step_ok(
                "gradient norm", norm, it, self.model):
            self.optimizer.zero_grad(set_to_none=True)
            return {k: float(v.detach()) for k, v in losses.items()} | {"skipped": 1}
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema:
            self.ema.update(self.model)
        return {k: float(v.detach()) for k, v in losses.items()}

    def fit(self) -> Path:
        t = self.cfg.train
        if D.is_main():
            self.work_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.work_dir / "config.yaml")
        with RunLogger(self.cfg, "train", self.mlflow, self.work_dir, self.resume) as run:
            while self.epoch < t.epochs:
                stage = stage_for_epoch(self.cfg, self.epoch)
                if stage != self.stage:
                    self._switch_stage(stage)
                self._run_epoch(run)
                self.epoch, self.iter_in_epoch = self.epoch + 1, 0
                if D.is_main() and self.validation and self.validation.due(self.epoch, t.epochs):
                    self._validate(run)
                if D.is_main() and (self.epoch % t.checkpoint_interval == 0 or self.epoch == t.epochs):
                    self.save("last.pt")
            final = self.work_dir / "final.pt"
            if D.is_main():
                self.save_weights("final.pt")
                print(f"bad input: {summarize(self.bad_input)}"
                      + (f"; {self.guard.skipped} non-finite steps skipped" if self.guard.skipped
                         else ""))
                curve = plot_loss_curve(self.history, self.work_dir / "loss_curve.png")
                for p in (self.work_dir / "config.yaml", self.work_dir / "metrics.csv", curve):
                    run.artifact(p)
                names = ["config.yaml", "last.pt", "final.pt", "metrics.csv", "loss_curve.png"]
                if self.validation and self.validation.best_epoch is not None:
                    names.insert(3, "best.pt")
                self.files = [self.work_dir / n for n in names if (self.work_dir / n).exists()]
        self.mlflow_run_id = run.run_id
        D.barrier()
        return final

    def _validate(self, run: RunLogger) -> None:
        """Score the EMA weights after this epoch; the main metric joins the epoch's last row of
        metrics.csv as ``val_<metric>``, and a new best is written to best.pt."""
        model = self.ema.module if self.ema else unwrap(self.model)
        metrics, improved = self.validation.run(model, self.epoch)
        key, value = f"val_{self.validation.metric}", metrics.get(self.validation.metric)
        if value is None:
            return
        self.last_val = {"epoch": self.epoch, "metric": self.validation.metric, "value": value}
        if self.history:
            self.history[-1][key] = round(float(value), 6)
        run.metrics({key: float(value)}, step=self.global_iter)
        if improved:
            self.save_weights("best.pt", best={"metric": self.validation.metric,
                                               "value": self.validation.best, "epoch": self.epoch})

    def _run_epoch(self, run: RunLogger) -> None:
        t = self.cfg.train
        bar = tqdm(total=self.iters_per_epoch, initial=self.iter_in_epoch, mininterval=2.0,
                   desc=f"epoch {self.epoch + 1}/{t.epochs} (stage {self.stage})",
                   disable=not D.is_main(), dynamic_ncols=True)
        tic = time.perf_counter()
        for images, targets in self._loader():
            if self.iter_in_epoch >= self.iters_per_epoch:
                break
            if self.stop_at_iter is not None and self.global_iter == self.stop_at_iter:
                bar.close()
                raise StopTraining(f"stopped at global iteration {self.global_iter}")
            try:
                losses = self.train_step(images, targets)
            except BaseException:
                bar.close()                  # the error line starts on a line of its own
                raise
            if losses.pop("skipped", 0):
                run.metrics({"skipped_steps": self.guard.skipped}, step=self.global_iter + 1)
            self.iter_in_epoch += 1
            self.global_iter += 1
            now = time.perf_counter()
            row = {"epoch": self.epoch + 1, "iter": self.iter_in_epoch,
                   "global_iter": self.global_iter, "lr": self.optimizer.param_groups[0]["lr"],
                   **{k: round(v, 6) for k, v in losses.items()},
                   "sec_per_iter": round(now - tic, 4)}
            tic = now
            self.history.append(row)
            if self.global_iter % t.log_interval == 0 or self.iter_in_epoch == self.iters_per_epoch:
                run.metrics({k: v for k, v in row.items() if k.startswith("loss") or k == "lr"},
                            step=self.global_iter)
            bar.set_postfix({k.replace("loss_", ""): f"{v:.3f}" for k, v in losses.items()})
            bar.update(1)
            if t.checkpoint_iters and self.global_iter % t.checkpoint_iters == 0 and D.is_main():
                self.save("last.pt")
        bar.close()
