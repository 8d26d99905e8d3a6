"""Training (paper section IV): Adam on the tagging loss plus cross-entropy, resumable, single or DDP.

:func:`train` is the library call behind ``tagvis train``; under ``torchrun`` every process calls it
and :mod:`.distributed` makes them one run. A run directory holds::

    config.json          the resolved config (model.num_classes set from the dataset)
    metrics.jsonl        one JSON line per log step and per validation (:mod:`.logging`)
    checkpoint_last.pt   model, optimiser, scaler, epoch/step/position, sampler and RNG states
    model_final.pt       the trained weights (a plain checkpoint that ``tagvis predict`` loads; with
                         ``train.ema_decay`` their moving average, :mod:`.averaging`)

Choices: the loss of a step is the mean over the clips of each process (each clip's objective is
computed alone, its pixel sampling seeded by the clip's position in the epoch), and DDP averages
gradients over processes, so N processes with batch B take the same step as one process with batch
N*B (``train.batchnorm="frozen"`` also removes the BatchNorm batch-statistics difference). A
non-finite loss term stops the run with :class:`TrainingDiverged` naming the step and the term.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..config import ExperimentConfig, TrainConfig, apply_overrides
from ..data import open_dataset
from ..data.torch_dataset import ClipDataset, collate_clips
from ..errors import CheckpointError, Interrupted, TagvisError
from ..losses import TagVISObjective
from ..losses.objective import NAMES, tagging_scale
from ..model import build_model, load_checkpoint, save_checkpoint
from ..model.precision import autocast, resolve_precision
from .averaging import WeightAverage
from .distributed import (DistContext, all_gather_objects, all_reduce_mean, barrier, cleanup_distributed,
                          freeze_batchnorm, init_distributed, unwrap, wrap_model)
from .logging import MetricsLog
from .state import ResumableSampler, check_model_config, clip_seed, rng_state, seed_everything, set_rng_state

LOGGED = NAMES + ("total",)
BATCHNORM_MODES = ("batch", "frozen")
LR_SCHEDULES = ("constant", "cosine")
CHECKPOINT, FINAL, CONFIG, METRICS = "checkpoint_last.pt", "model_final.pt", "config.json", "metrics.jsonl"


class TrainingDiverged(TagvisError):
    """A loss term became NaN or infinite."""


def train(
    cfg: ExperimentConfig,
    ytvis_root: str | os.PathLike | None = None,
    davis_root: str | os.PathLike | None = None,
    split: str = "train",
    out_dir: str | os.PathLike = "runs/train",
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on ``split`` of a YouTube-VIS or DAVIS root (exactly one) into ``out_dir``.

    ``resume=True`` continues from ``out_dir/checkpoint_last.pt`` when it exists (a finished run
    returns at once); without it an ``out_dir`` that already holds a checkpoint is refused.
    Returns a summary: run_dir, device, world_size, rank, precision (``train.precision`` resolved),
    steps, epochs, seconds, clips_per_s, the last
    logged training line (``last``), the last validation metrics (``val``) and the file paths.
    """
    ctx = init_distributed(cfg.train.device)
    try:
        summary = Trainer(cfg, ctx, out_dir, split, ytvis_root, davis_root, progress).fit(resume)
        barrier(ctx)
    finally:
        cleanup_distributed(ctx)
    return summary


def configure_backends(train_cfg: TrainConfig, device: torch.device) -> None:
    """Deterministic kernels when asked (and only then); otherwise cuDNN autotuning and TF32 on CUDA."""
    deterministic = train_cfg.deterministic
    if deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic
    if device.type == "cuda" and not deterministic:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def build_optimizer(model: torch.nn.Module, train_cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with ``lr`` and ``weight_decay``; encoder parameters get ``lr * encoder_lr_scale``."""
    encoder, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (encoder if name.startswith("encoder.") else rest).append(param)
    groups = [{"params": rest, "lr": train_cfg.lr, "name": "heads"},
              {"params": encoder, "lr": train_cfg.lr * train_cfg.encoder_lr_scale, "name": "encoder"}]
    # fused: one kernel for all parameters (CPU and CUDA), several times faster than the per-tensor loop
    return torch.optim.Adam([g for g in groups if g["params"]], lr=train_cfg.lr, weight_decay=train_cfg.weight_decay,
                            fused=True)


def lr_factor(step: int, total_steps: int, train_cfg: TrainConfig) -> float:
    """Multiplier of the learning rates for optimiser step ``step`` (0-based) of ``total_steps``."""
    warmup = train_cfg.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if train_cfg.lr_schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))
    return 1.0


def leaves_parameters_unused(cfg: ExperimentConfig) -> bool:
    """True when a loss weight of 0 leaves some parameters without gradient (DDP must look for them):
    the semantic head without cross-entropy, or the tag head without tagging terms and tag connector."""
    no_tag_loss = all(getattr(cfg.loss, f"{name}_weight") == 0 for name in NAMES if name != "ce")
    return cfg.loss.ce_weight == 0 or (no_tag_loss and not cfg.model.tag_attention_connector)


def check_train_config(cfg: ExperimentConfig) -> None:
    """Raise ``ValueError`` naming the field of a TrainConfig that cannot run."""
    t = cfg.train
    if t.batchnorm not in BATCHNORM_MODES:
        raise ValueError(f"train.batchnorm={t.batchnorm!r}: expected one of {BATCHNORM_MODES}")
    if t.batch_size < 1 or t.epochs < 0 or (t.max_steps is not None and t.max_steps < 0):
        raise ValueError("train.batch_size must be >= 1, train.epochs and train.max_steps >= 0")
    if t.micro_batch is not None and (t.micro_batch < 1 or t.batch_size % t.micro_batch):
        raise ValueError(f"train.micro_batch={t.micro_batch} must be >= 1 and divide train.batch_size={t.batch_size}")
    if t.lr <= 0 or t.encoder_lr_scale < 0 or (t.grad_clip is not None and t.grad_clip <= 0):
        raise ValueError("train.lr and train.grad_clip must be > 0, train.encoder_lr_scale >= 0")
    if t.val_every > 0 and not t.val_split:
        raise ValueError("train.val_every > 0 needs train.val_split (the split to validate on)")
    if t.lr_schedule not in LR_SCHEDULES or t.warmup_steps < 0:
        raise ValueError(f"train.lr_schedule={t.lr_schedule!r}: expected one of {LR_SCHEDULES}; train.warmup_steps >= 0")
    if not 0.0 <= t.ema_decay < 1.0:
        raise ValueError(f"train.ema_decay={t.ema_decay}: expected a decay in [0, 1) (0: off)")
    if t.log_every < 1 or t.checkpoint_every < 0:
        raise ValueError("train.log_every must be >= 1 and train.checkpoint_every >= 0")


#: Fields a resumed run may change: where it runs, not what it computes.
RESUME_MAY_CHANGE = {("train", "device"), ("data", "num_workers")}
#: Fields a resumed run may change and that it reports on stderr: the budget and the bookkeeping.
RESUME_BUDGET = {("train", "max_steps"), ("train", "epochs"), ("train", "log_every"),
                 ("train", "checkpoint_every"), ("train", "val_every")}


def check_resume_config(saved: dict[str, Any], cfg: ExperimentConfig, path: str) -> list[str]:
    """Refuse (CheckpointError naming the fields) a resume that changes what the run computes.

    Returns the budget changes (:data:`RESUME_BUDGET`, e.g. a longer ``train.max_steps``), which
    are allowed and which the caller reports.
    """
    from ..config import SECTIONS

    before, now = ExperimentConfig.from_dict(saved).to_dict(), cfg.to_dict()
    changes = [((section, key), f"{section}.{key}: {before[section].get(key)!r} -> {now[section][key]!r}")
               for section in SECTIONS if section != "model" for key in now[section]
               if (section, key) not in RESUME_MAY_CHANGE and before[section].get(key) != now[section][key]]
    refused = [text for field, text in changes if field not in RESUME_BUDGET]
    if refused:
        raise CheckpointError(path, "config", "--resume continues the run with its own settings, but this command "
                              f"changes {'; '.join(refused)}; drop those overrides, or start a new run directory")
    return [text for field, text in changes if field in RESUME_BUDGET]


def check_config(cfg: ExperimentConfig) -> None:
    """Every section at start-up (``ValueError`` naming the field), so that no run folder is made for
    a config that cannot train and no checkpoint saves one that cannot predict."""
    from ..data.clips import check_data_config
    from ..inference.grouping import check_inference_config
    from ..model.network import validate_model_config
    from ..model.precision import PRECISIONS

    check_data_config(cfg)
    validate_model_config(cfg.model)
    check_train_config(cfg)
    check_inference_config(cfg)
    if cfg.inference.precision not in PRECISIONS:
        raise ValueError(f"inference.precision: expected one of {PRECISIONS}, got {cfg.inference.precision!r}")


class Trainer:
    """One training run; :meth:`fit` runs it (see :func:`train`)."""

    def __init__(self, cfg: ExperimentConfig, ctx: DistContext, out_dir: str | os.PathLike, split: str,
                 ytvis_root: str | os.PathLike | None, davis_root: str | os.PathLike | None, progress: bool):
        self.ctx, self.run_dir, self.progress = ctx, Path(out_dir), progress
        self.roots = {"ytvis_root": ytvis_root, "davis_root": davis_root}
        dataset = open_dataset(split, ytvis=ytvis_root, davis=davis_root)
        if len(dataset) == 0:
            raise TagvisError(f"split {split!r} has no videos")
        dataset.check_files()  # every listed frame on disk before step 1, not when a clip first samples it
        self.categories = [dict(c) for c in dataset.categories]
        self.cfg = apply_overrides(cfg, {"model.num_classes": len(self.categories)})
        check_config(self.cfg)
        t = self.cfg.train
        if t.val_every > 0:  # the validation split too, before step 1
            open_dataset(t.val_split, ytvis=ytvis_root, davis=davis_root).check_files()
        self.device = ctx.device
        configure_backends(t, self.device)
        self.precision = resolve_precision(t.precision, self.device, "train.precision")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.clips = ClipDataset(dataset, self.cfg.data, train=True, seed=t.seed)
        self.sampler = ResumableSampler(self.clips, t.batch_size, ctx.world_size, ctx.rank, seed=t.seed)
        self.loader = DataLoader(
            self.clips, batch_size=t.batch_size, sampler=self.sampler, collate_fn=collate_clips,
            num_workers=self.cfg.data.num_workers, persistent_workers=self.cfg.data.num_workers > 0,
            pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(t.seed),
        )
        self.objective = TagVISObjective(self.cfg.loss, seed=t.seed)
        self.epoch = self.step = self.step_in_epoch = 0
        self.saved_step = -1  #: step of the last checkpoint written (or read)
        self.average: WeightAverage | None = None  #: train.ema_decay: the moving average of the weights
        self.last_row: dict[str, Any] | None = None
        self.last_val: dict[str, Any] | None = None
        self.log: MetricsLog | None = None

    # ----------------------------------------------------------------- set-up and state
    def _build(self, resuming: bool) -> None:
        """Model (encoder weights read only for a fresh run), optimiser."""
        seed_everything(self.cfg.train.seed)
        model_cfg = dataclasses.replace(self.cfg.model, encoder_weights=None) if resuming else self.cfg.model
        if not resuming and self.cfg.profile == "paper" and not self.cfg.model.encoder_weights and self.ctx.rank == 0:
            print("tagvis train: warning: model.encoder_weights is not set, so the encoder starts from random "
                  "weights; the paper starts from Kinetics-400 (a local torchvision r2plus1d_18 state dict)",
                  file=sys.stderr)
        self.model = build_model(model_cfg).to(self.device)
        self.optimizer = build_optimizer(self.model, self.cfg.train)
        self.average = WeightAverage(self.model, self.cfg.train.ema_decay) if self.cfg.train.ema_decay else None

    def _restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        check_model_config(ckpt["config"].get("model", {}), dataclasses.asdict(self.cfg.model), str(path))
        for change in check_resume_config(ckpt["config"], self.cfg, str(path)):
            if self.ctx.is_main:
                print(f"tagvis train: resuming with a new budget: {change}", file=sys.stderr)
        order = ckpt["sampler"]  # the data order of the interrupted epoch must be this run's
        had = (order["seed"], order["batch_size"] * order["num_replicas"])
        has = (self.cfg.train.seed, self.cfg.train.batch_size * self.ctx.world_size)
        if ckpt["step_in_epoch"] and had != has:
            raise CheckpointError(path, "sampler", f"the checkpoint stopped mid-epoch with seed {had[0]} and a global "
                                  f"batch of {had[1]} clips; this run has seed {has[0]} and {has[1]} (batch_size x processes)")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if self.average is not None:
            if "average" not in ckpt:
                raise CheckpointError(path, "average", "train.ema_decay is set, but the checkpoint holds no weight average")
            self.average.load_state_dict(ckpt["average"])
        self.epoch, self.step, self.step_in_epoch = ckpt["epoch"], ckpt["step"], ckpt["step_in_epoch"]
        self.saved_step = self.step
        self.last_val = ckpt.get("last_val")
        rngs = ckpt["rng"]
        set_rng_state(rngs[self.ctx.rank % len(rngs)])

    def _save(self) -> None:
        """Write ``checkpoint_last.pt`` (every rank takes part: RNG states are gathered to rank 0)."""
        rngs = all_gather_objects(rng_state(), self.ctx)
        self.saved_step = self.step
        if not self.ctx.is_main:
            return
        save_checkpoint(
            self.run_dir / CHECKPOINT, unwrap(self.model), self.cfg, self.categories,
            optimizer=self.optimizer.state_dict(), scaler=self.scaler.state_dict(), epoch=self.epoch,
            step=self.step, step_in_epoch=self.step_in_epoch, sampler=self.sampler.state_dict(), rng=rngs, last_val=self.last_val,
            **({} if self.average is None else {"average": self.average.state_dict()}),
        )

    def _final_weights(self) -> torch.nn.Module:
        """The network ``model_final.pt`` holds: the trained one, or its moving average (``train.ema_decay``)."""
        return unwrap(self.model) if self.average is None else self.average.module

    def _train_mode(self) -> None:
        self.model.train()
        if self.cfg.train.batchnorm == "frozen":
            freeze_batchnorm(self.model)

    def _done(self) -> bool:
        t = self.cfg.train
        return self.epoch >= t.epochs or (t.max_steps is not None and self.step >= t.max_steps)

    # ----------------------------------------------------------------- the loop
    def fit(self, resume: bool) -> dict[str, Any]:
        ckpt_path = self.run_dir / CHECKPOINT
        resuming = resume and ckpt_path.exists()
        if not resume and (ckpt_path.exists() or (self.run_dir / FINAL).exists()):
            raise TagvisError(f"{self.run_dir}: already holds a training run; pass --resume "
                              "(resume=True) to continue it, or choose another output directory")
        self._build(resuming)
        if resuming:
            self._restore(ckpt_path)
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.run_dir.glob(".*.tmp"):  # left by a process killed while saving
                stale.unlink()
            self.cfg.save(self.run_dir / CONFIG)
            self.log = MetricsLog(self.run_dir / METRICS, resume_step=self.step if resuming else None)
        self.model = wrap_model(self.model, self.ctx, self.cfg.train.batchnorm, leaves_parameters_unused(self.cfg))
        start, start_step = time.perf_counter(), self.step
        try:
            try:
                self._run_epochs()
            except KeyboardInterrupt:
                saved = (f"the last checkpoint is {self.run_dir / CHECKPOINT} (step {self.saved_step})"
                         if self.saved_step >= 0 else "no checkpoint was written yet")
                raise Interrupted(f"interrupted at step {self.step}; {saved}; continue with the same command "
                                  "and --resume") from None
            if self.saved_step != self.step:
                self._save()
            if self.ctx.is_main:
                save_checkpoint(self.run_dir / FINAL, self._final_weights(), self.cfg, self.categories)
        finally:
            if self.log is not None:
                self.log.close()
        seconds = time.perf_counter() - start
        clips = (self.step - start_step) * self.cfg.train.batch_size * self.ctx.world_size
        return {
            "run_dir": str(self.run_dir), "device": str(self.device), "world_size": self.ctx.world_size,
            "rank": self.ctx.rank, "precision": self.precision, "steps": self.step, "epochs": self.epoch, "seconds": round(seconds, 3),
            "clips_per_s": round(clips / seconds, 3) if seconds > 0 else 0.0,
            "last": self.last_row, "val": self.last_val,
            "config": str(self.run_dir / CONFIG), "metrics": str(self.run_dir / METRICS),
            "checkpoint": str(self.run_dir / CHECKPOINT), "model_final": str(self.run_dir / FINAL),
        }

    def _run_epochs(self) -> None:
        from tqdm.auto import tqdm

        t = self.cfg.train
        steps_per_epoch = self.sampler.steps_per_epoch
        while not self._done():
            epoch = self.epoch
            self.sampler.set_epoch(epoch)
            self.clips.set_epoch(epoch)
            self.sampler.set_start(self.step_in_epoch * t.batch_size)
            self._train_mode()
            window = _Window()
            bar = tqdm(total=steps_per_epoch, initial=self.step_in_epoch, desc=f"epoch {epoch + 1}/{t.epochs}",
                       unit="step", disable=not (self.progress and self.ctx.is_main), leave=False)
            for batch in self.loader:
                seeds = [clip_seed(t.seed, epoch, p) for p in self.sampler.batch_positions(self.step_in_epoch)]
                window.add(self._step(batch, seeds), len(seeds))
                self.step += 1
                self.step_in_epoch += 1
                bar.update(1)
                if self.step % t.log_every == 0 or self.step_in_epoch == steps_per_epoch or self._done():
                    self._log(window, steps_per_epoch)
                    bar.set_postfix(loss=f"{self.last_row['total']:.4g}")
                    window = _Window()
                if self._done():
                    break
                if t.checkpoint_every and self.step % t.checkpoint_every == 0 and self.step_in_epoch < steps_per_epoch:
                    self._save()
            bar.close()
            if self.step_in_epoch < steps_per_epoch:  # stopped by max_steps
                break
            self.epoch, self.step_in_epoch = epoch + 1, 0
            if t.val_every and self.epoch % t.val_every == 0:
                self._validate()
            self._save()

    def _step(self, batch: dict[str, Any], seeds: list[int]) -> torch.Tensor:
        """One optimiser step on ``batch``; returns the (len(LOGGED),) loss values (mean over clips).

        With ``train.micro_batch`` the clips go through the network ``micro_batch`` at a time and the
        gradients of the passes are summed (each pass's loss weighted by its share of the batch).
        """
        dev, size = self.device, len(seeds)
        tensors = [batch[k].to(dev, non_blocking=True) for k in ("frames", "instance_ids", "semantic")]
        micro = self.cfg.train.micro_batch or size
        self.optimizer.zero_grad(set_to_none=True)
        values = torch.zeros(len(LOGGED), dtype=torch.float64)
        for start in range(0, size, micro):
            part = slice(start, start + micro)
            last = start + micro >= size
            sync = contextlib.nullcontext() if last or not self.ctx.distributed else self.model.no_sync()
            with sync:
                terms = self._loss(*(x[part] for x in tensors), seeds[part])
                self.scaler.scale(terms["total"] * (len(seeds[part]) / size)).backward()
            values += torch.stack([terms[k].detach() for k in LOGGED]).double().cpu() * (len(seeds[part]) / size)
        if self.cfg.train.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self._set_lr()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.average is not None:
            self.average.update(unwrap(self.model))
        return values

    def _set_lr(self) -> None:
        """The learning rate of the step about to be taken (:func:`lr_factor`), in every group."""
        t = self.cfg.train
        total = t.epochs * self.sampler.steps_per_epoch
        total = total if t.max_steps is None else min(total, t.max_steps)
        factor = lr_factor(self.step, total, t)
        for group in self.optimizer.param_groups:
            group["lr"] = t.lr * factor * (t.encoder_lr_scale if group["name"] == "encoder" else 1.0)

    def _loss(self, frames: torch.Tensor, ids: torch.Tensor, semantic: torch.Tensor, seeds: list[int]) -> dict[str, torch.Tensor]:
        """Forward pass and objective, mean over the clips; frames (b,3,T,H,W), ids/semantic (b,T,H,W).

        Each clip's objective is computed alone, its pixel sampling seeded by ``seeds``. A non-finite
        term raises :class:`TrainingDiverged` naming the step and the term.
        """
        with autocast(self.device, self.precision):
            output = self.model(frames)
        tags, logits = output[0].float(), output[1].float()
        batch = {"instance_ids": ids, "semantic": semantic}
        try:
            return self.objective.clip_mean((tags, logits), batch, seeds, tag_scale=tagging_scale(self.step, self.cfg.loss))
        except FloatingPointError as exc:
            raise TrainingDiverged(f"step {self.step + 1}: {exc}") from exc

    def _log(self, window: "_Window", steps_per_epoch: int) -> None:
        """All ranks: average the window's losses over ranks; rank 0 writes the line."""
        means = all_reduce_mean(window.sums.to(self.device) / max(window.steps, 1), self.ctx).cpu().tolist()
        elapsed = max(time.perf_counter() - window.start, 1e-9)
        row: dict[str, Any] = {"event": "train", "step": self.step,
                               "epoch": round(self.epoch + self.step_in_epoch / steps_per_epoch, 4)}
        row.update({k: v for k, v in zip(LOGGED, means)})
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["clips_per_s"] = round(window.clips * self.ctx.world_size / elapsed, 3)
        row["time"] = round(time.time(), 3)
        self.last_row = row
        if self.log is not None:
            self.log.write(row)

    def _validate(self) -> None:
        """Rank 0 scores ``train.val_split`` (with the weights ``model_final.pt`` would hold); the other ranks wait."""
        if self.ctx.is_main:
            from .validation import validate

            metrics = validate(self._final_weights(), self.cfg, self.cfg.train.val_split, self.device, **self.roots)
            self.last_val = {"event": "val", "step": self.step, "epoch": self.epoch,
                             "split": self.cfg.train.val_split, **metrics}
            if self.log is not None:
                self.log.write(self.last_val)
        barrier(self.ctx)
        self._train_mode()


class _Window:
    """Loss sums since the last log line."""

    def __init__(self) -> None:
        self.sums = torch.zeros(len(LOGGED), dtype=torch.float64)
        self.steps = self.clips = 0
        self.start = time.perf_counter()

    def add(self, values: torch.Tensor, clips: int) -> None:
        self.sums += values.double()
        self.steps += 1
        self.clips += clips
