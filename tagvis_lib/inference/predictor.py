"""Whole videos to instance masks (paper section IV, "Inference"): the prediction records and
:func:`predict_video`, which plans the clips (:mod:`.planning`), runs them (:mod:`.running`:
forward, grouping, linking by :mod:`.linking`) and renders the label maps (:mod:`.rendering`).

``inference.long_video``:

- ``"single_clip"`` (paper): one clip of ``clip_length`` frames spread evenly over the video
  (``tagvis_lib.data.clips.inference_indices``, dropping intermittent frames). A video shorter than
  the clip is padded by repeating its last frame; padded frames are marked invalid, hold no
  foreground, and never reach the output, which has exactly the video's frames.
- ``"overlapping"`` (beyond the paper): consecutive clips of every frame sharing ``clip_overlap``
  frames, instances linked across clips (:mod:`.linking`); each frame is taken from the clip whose
  centre is nearest.

Frames are resized to ``(inference.height or data.height, inference.width or data.width)`` and
Kinetics-normalised. Instances are found per clip at network resolution (:mod:`.grouping`); their
soft masks ``fg_soft * (labels == k)`` are bilinearly upsampled to the frame size and thresholded
at 0.5. A frame that was not processed takes the soft masks of its processed neighbours:
``"nearest"`` (the closer one, the later on a tie) or ``"linear"`` (blend weighted by temporal
distance, threshold 0.5). Every pixel belongs to at most one instance (the soft masks of one pixel
sum to at most 1), so masks are kept as one label map per frame.

Scores: those of :meth:`.grouping.InstanceStats.ranked_classes` (mean class probability x tag
compactness); with ``inference.coverage_score`` each is multiplied by the instance's temporal
coverage, the fraction of the video's frames where its final mask is not empty, so fragments that
live a few frames rank below instances that persist.

Precision: the forward runs under ``inference.precision`` (:mod:`tagvis_lib.model.precision`);
tags and logits are float32 from then on.

Timing: ``warmup_runs`` untimed forward passes first (CUDA synchronised around each timed step).
Two figures, kept apart:

- ``network_fps`` = network frames / forward seconds, where network frames are the clip frames that
  went through the network (overlapping clips count a shared frame once per clip; padding not counted);
- ``video_fps`` = video frames / seconds from decoded frames to final masks (resize, forward,
  grouping, upsampling, interpolation), every frame of the video counted, interpolated ones included.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from ..config import ExperimentConfig
from ..model.precision import autocast, resolve_precision
from .bridging import bridge_gaps
from .grouping import check_inference_config, grouping_bandwidth
from .planning import clip_plan, network_size, prepare_clip
from .rendering import final_labels, tag_summary
from .running import run_clips, sync


@dataclass
class TagSummary:
    """Low-memory view of the tags for figures: processed frames only, network resolution.

    frame_indices: int64 (P,) video frame of each processed frame, ascending;
    tag_map: float16 (P, h, w) tags projected on ``axis`` (D = 1: the tag itself);
    foreground: bool (P, h, w); semantic: uint8 (P, h, w) argmax class index 0..C;
    center, axis: (D,) the projection ``(tag - center) @ axis`` (first principal axis of the first
    clip's foreground tags when D > 1).
    """

    frame_indices: np.ndarray
    tag_map: np.ndarray
    foreground: np.ndarray
    semantic: np.ndarray
    center: np.ndarray
    axis: np.ndarray

    def project(self, tags: np.ndarray) -> np.ndarray:
        """Tags ``(..., D)`` to values ``(...)`` on the summary's axis."""
        return (np.asarray(tags, dtype=np.float32) - self.center) @ self.axis


@dataclass
class VideoPrediction:
    """Instances of one video: M instance masks reported as K >= M entries (one per top-k class).

    labels: uint8 (L, H, W) 0 = no instance, m + 1 = instance m; instance_tags: float32 (M, D)
    instance modes; entry_instance: int64 (K,) instance of each entry; classes: int64 (K,) class
    index 1..C; scores: float32 (K,), entries sorted by descending score; timing: seconds and fps.
    """

    labels: np.ndarray
    instance_tags: np.ndarray
    entry_instance: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    timing: dict[str, float] = field(default_factory=dict)
    tags: TagSummary | None = None

    @property
    def num_instances(self) -> int:
        return int(self.instance_tags.shape[0])

    @property
    def instance_masks(self) -> np.ndarray:
        """bool (M, L, H, W)."""
        ids = np.arange(1, self.num_instances + 1, dtype=self.labels.dtype)
        return self.labels[None] == ids[:, None, None, None]

    @property
    def masks(self) -> np.ndarray:
        """bool (K, L, H, W), the mask of each entry."""
        return self.labels[None] == (self.entry_instance + 1).astype(self.labels.dtype)[:, None, None, None]

    @property
    def instance_scores(self) -> np.ndarray:
        """float32 (M,) best score of each instance over its entries."""
        best = np.zeros(self.num_instances, dtype=np.float32)
        np.maximum.at(best, self.entry_instance, self.scores)
        return best


def predict_video(model: nn.Module, frames: np.ndarray, cfg: ExperimentConfig, device: str | torch.device = "cpu",
                  *, warmup_runs: int | None = None, keep_tags: bool = True) -> VideoPrediction:
    """Instances of a whole video.

    frames: uint8 (L, H, W, 3) RGB; the model maps (1, 3, T, h, w) to ``TagVISOutput(tags
    (1, D, T, h, w), logits (1, C+1, T, h, w))``. ``warmup_runs`` (default
    ``inference.warmup_runs``) untimed forward passes precede the timed run; ``keep_tags`` adds
    the :class:`TagSummary` for figures.
    """
    check_inference_config(cfg)
    device = torch.device(device)
    precision = resolve_precision(cfg.inference.precision, device, "inference.precision")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames: expected uint8 (L, H, W, 3) with L >= 1, got {frames.dtype} {frames.shape}")
    num_frames, height, width = frames.shape[:3]
    plan = clip_plan(num_frames, cfg)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            warm = cfg.inference.warmup_runs if warmup_runs is None else warmup_runs
            if warm:
                x = prepare_clip(frames[plan[0][0]], network_size(cfg), device)
                for _ in range(warm):
                    with autocast(device, precision):
                        model(x)
                sync(device)
            start = time.perf_counter()
            clips = run_clips(model, frames, plan, cfg, device, keep_tags, precision)
            if cfg.inference.bridge_gaps:
                clips = bridge_gaps(model, frames, clips, cfg, device, precision)
            labels, stats, coverage = final_labels(clips, num_frames, (height, width), cfg, device)
            classes, scores = stats.ranked_classes(grouping_bandwidth(cfg), cfg.inference.topk_classes)
            if cfg.inference.coverage_score:
                scores = scores * coverage.unsqueeze(1).to(scores.dtype)
            labels = labels.cpu().numpy()
            sync(device)
            total_s = time.perf_counter() - start
    finally:
        model.train(was_training)
    k = classes.shape[1]
    order = torch.argsort(scores.flatten(), descending=True, stable=True)
    network_frames = clips.network_frames
    timing = {
        "frames": num_frames, "network_frames": network_frames, "clips": len(plan), "precision": precision,
        "model_s": clips.model_s, "total_s": total_s,
        "network_fps": network_frames / max(clips.model_s, 1e-12), "video_fps": num_frames / max(total_s, 1e-12),
    }
    return VideoPrediction(
        labels=labels,
        instance_tags=stats.modes.float().cpu().numpy(),
        entry_instance=(order // k).cpu().numpy().astype(np.int64),
        classes=classes.flatten()[order].cpu().numpy().astype(np.int64),
        scores=scores.flatten()[order].float().cpu().numpy(),
        timing=timing,
        tags=tag_summary(clips) if keep_tags else None,
    )


def predict_dataset(model: nn.Module, dataset: Any, cfg: ExperimentConfig, device: str | torch.device = "cpu",
                    progress: bool = True, keep_tags: bool = False) -> Iterator[tuple[Any, VideoPrediction]]:
    """Yield ``(sample, prediction)`` for every video of ``dataset`` (warm-up before the first only)."""
    from tqdm.auto import tqdm

    for i in tqdm(range(len(dataset)), desc="predict", unit="video", disable=not progress):
        sample = dataset[i]
        warm = cfg.inference.warmup_runs if i == 0 else 0
        yield sample, predict_video(model, sample.frames, cfg, device, warmup_runs=warm, keep_tags=keep_tags)
