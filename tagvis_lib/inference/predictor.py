"""Whole videos to instance masks (paper section IV, "Inference").

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
import torch.nn.functional as F
from torch import nn

from ..config import ExperimentConfig
from ..data.normalization import normalize
from ..data.clips import inference_indices, interpolation_sources
from ..model.precision import autocast, resolve_precision
from .grouping import ClipGroups, InstanceStats, check_inference_config, group_clip, grouping_bandwidth
from .linking import link_similarity, match_instances


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


def prepare_clip(frames: np.ndarray, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> float32 (1, 3, T, h, w) resized (bilinear, antialiased) and
    Kinetics-normalised."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255.0
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return normalize(x, channel_dim=1, scale=1.0).permute(1, 0, 2, 3)[None].contiguous()


def clip_plan(num_frames: int, cfg: ExperimentConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """The clips processed for a video: list of (frame indices int64 (T,), valid bool (T,))."""
    length = cfg.inference.clip_length
    if cfg.inference.long_video == "single_clip" or num_frames <= length:
        indices, valid = inference_indices(num_frames, length)
        return [(np.asarray(indices, dtype=np.int64), np.asarray(valid, dtype=bool))]
    stride = length - cfg.inference.clip_overlap
    starts = list(range(0, num_frames - length + 1, stride))
    if starts[-1] != num_frames - length:
        starts.append(num_frames - length)
    return [(np.arange(s, s + length, dtype=np.int64), np.ones(length, dtype=bool)) for s in starts]


def render_labels(labels: torch.Tensor, soft: torch.Tensor, sources: tuple[np.ndarray, np.ndarray, np.ndarray],
                  num_instances: int, size: tuple[int, int], max_elements: int = 1 << 25) -> torch.Tensor:
    """Label maps uint8 (L, H, W) at ``size`` from processed frames at network resolution.

    labels: int64 (P, h, w) 0 or instance m + 1; soft: (P, h, w) foreground confidence;
    sources: (p0 (L,), p1 (L,), a (L,)): frame l's soft masks are ``(1 - a) * S[p0] + a * S[p1]``.
    """
    p0, p1, a = (torch.as_tensor(s, device=labels.device) for s in sources)
    out = torch.zeros((len(p0), *size), dtype=torch.uint8, device=labels.device)
    if num_instances == 0:
        return out
    step = max(1, max_elements // (num_instances * size[0] * size[1]))

    def soft_masks(p: torch.Tensor) -> torch.Tensor:  # (F, M, h, w): instance m's soft mask in channel m
        masks = soft.new_zeros((len(p), num_instances + 1, *soft.shape[1:]))
        return masks.scatter_(1, labels[p][:, None], soft[p][:, None])[:, 1:]

    for s in range(0, len(p0), step):
        w = a[s:s + step].to(soft.dtype)
        blend = soft_masks(p0[s:s + step])
        if bool((w != 0).any()):  # frames between two processed ones (linear interpolation)
            w = w[:, None, None, None]
            blend = (1 - w) * blend + w * soft_masks(p1[s:s + step])
        up = F.interpolate(blend, size=size, mode="bilinear", align_corners=False)
        value, index = up.max(1)
        out[s:s + step] = torch.where(value > 0.5, index + 1, 0).to(torch.uint8)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _owners(plan: list[tuple[np.ndarray, np.ndarray]], num_frames: int) -> np.ndarray:
    """For each frame, the clip whose centre is nearest among the clips that process it."""
    dist = np.full((len(plan), num_frames), np.inf)
    for c, (indices, valid) in enumerate(plan):
        frames = indices[valid]
        dist[c, frames] = np.abs(frames - frames.mean())
    return dist.argmin(0)


def _projection(tags: torch.Tensor, fg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(center (D,), axis (D,)) of the 1-D view of tags (D, T, h, w) used by figures."""
    d = tags.shape[0]
    center, axis = tags.new_zeros(d), tags.new_zeros(d)
    axis[0] = 1.0
    x = tags[:, fg].T
    if d > 1 and len(x) > 1:
        x = x[:: max(1, len(x) // 20000)]
        center = x.mean(0)
        axis = torch.linalg.svd(x - center, full_matrices=False).Vh[0]
        axis = axis * torch.sign(axis[axis.abs().argmax()])
    return center, axis


@dataclass
class _Clips:
    """What the clips of a video leave for the final masks (network resolution).

    frames: video frame -> (track labels int32 (h, w) 0 or track + 1, fg_soft (h, w)[, tag_map,
    foreground, semantic when tags are kept]); stats: per-track :class:`InstanceStats`.
    """

    frames: dict[int, tuple]
    stats: InstanceStats
    num_tracks: int
    model_s: float
    projection: tuple[torch.Tensor, torch.Tensor] | None


def _link(prev: tuple | None, indices: np.ndarray, valid: np.ndarray, groups: ClipGroups, tags: torch.Tensor,
          bandwidth: float) -> torch.Tensor:
    """Track of each instance of this clip (int64 (K,)) from the previous clip's, -1 where new."""
    tracks = torch.full((groups.num_instances,), -1, dtype=torch.long)
    if prev is None:
        return tracks
    p_groups, p_indices, p_valid, p_tracks = prev
    shared, p_pos, n_pos = np.intersect1d(p_indices[p_valid], indices[valid], return_indices=True)
    if len(shared) == 0 or len(p_tracks) == 0 or groups.num_instances == 0:
        return tracks
    p_pos, n_pos = np.flatnonzero(p_valid)[p_pos], np.flatnonzero(valid)[n_pos]
    sim = link_similarity(p_groups.labels[p_pos], groups.labels[n_pos], tags[:, n_pos], groups.stats.modes, bandwidth)
    match = torch.as_tensor(match_instances(sim))
    return torch.where(match >= 0, p_tracks[match.clamp_min(0)], -1)


def network_size(cfg: ExperimentConfig) -> tuple[int, int]:
    """(h, w) the frames are resized to: ``inference.height/width`` or else ``data.height/width``."""
    return cfg.inference.height or cfg.data.height, cfg.inference.width or cfg.data.width


def _run_clips(model: nn.Module, frames: np.ndarray, plan: list[tuple[np.ndarray, np.ndarray]], cfg: ExperimentConfig,
               device: torch.device, keep_tags: bool, precision: str) -> _Clips:
    """Forward every clip of the plan (at ``precision``), group its tags and link its instances into tracks."""
    size = network_size(cfg)
    bandwidth = grouping_bandwidth(cfg)
    owner = _owners(plan, len(frames))
    kept: dict[int, tuple] = {}
    clip_stats, clip_tracks = [], []
    prev, num_tracks, model_s, projection = None, 0, 0.0, None
    for c, (indices, valid) in enumerate(plan):
        x = prepare_clip(frames[indices], size, device)
        _sync(device)
        t0 = time.perf_counter()
        with autocast(device, precision):
            out = model(x)
        _sync(device)
        model_s += time.perf_counter() - t0
        tags, probs = out.tags[0].float(), out.logits[0].float().softmax(0)
        groups = group_clip(tags, probs, torch.as_tensor(valid, device=device), cfg)
        tracks = _link(prev, indices, valid, groups, tags, bandwidth)
        new = tracks < 0
        tracks[new] = torch.arange(num_tracks, num_tracks + int(new.sum()))
        num_tracks += int(new.sum())
        clip_stats.append(groups.stats)
        clip_tracks.append(tracks)
        prev = (groups, indices, valid, tracks)
        if keep_tags and projection is None:
            projection = _projection(tags, groups.fg_soft > 0.5)
        lut = torch.cat([torch.zeros(1, dtype=torch.long), tracks + 1]).to(device)
        for t in np.flatnonzero(valid):
            f = int(indices[t])
            if owner[f] != c or f in kept:
                continue
            extra = ()
            if projection is not None:
                center, axis = projection
                tag_map = torch.einsum("dhw,d->hw", tags[:, t] - center[:, None, None], axis)
                extra = (tag_map.half(), groups.fg_soft[t] > 0.5, probs[:, t].argmax(0).to(torch.uint8))
            kept[f] = (lut[groups.labels[t]].to(torch.int32), groups.fg_soft[t], *extra)
    return _Clips(kept, _merge_stats(clip_stats, clip_tracks, num_tracks), num_tracks, model_s, projection)


def _final_labels(clips: _Clips, num_frames: int, size: tuple[int, int], cfg: ExperimentConfig,
                  device: torch.device) -> tuple[torch.Tensor, InstanceStats, torch.Tensor]:
    """Label maps uint8 (L, H, W) of the best ``max_instances`` tracks that are not empty, with their
    stats and their :func:`temporal_coverage` (K,)."""
    best = clips.stats.ranked_classes(grouping_bandwidth(cfg), 1)[1][:, 0]
    kept = torch.argsort(best, descending=True, stable=True)[: cfg.inference.max_instances].to(device)
    relabel = torch.zeros(clips.num_tracks + 1, dtype=torch.long, device=device)
    relabel[kept + 1] = torch.arange(1, len(kept) + 1, device=device)
    processed = np.array(sorted(clips.frames), dtype=np.int64)
    labels = relabel[torch.stack([clips.frames[f][0] for f in processed]).long()]
    soft = torch.stack([clips.frames[f][1] for f in processed])
    sources = interpolation_sources(num_frames, processed)
    if cfg.inference.interpolation == "nearest":
        near = np.where(sources[2] >= 0.5, sources[1], sources[0])
        sources = (near, near, np.zeros(num_frames))
    out = render_labels(labels, soft, sources, len(kept), size)
    coverage = temporal_coverage(out, len(kept))
    present = coverage > 0  # never report an empty mask
    if present.all():
        return out, clips.stats.select(kept), coverage
    compact = torch.zeros(len(kept) + 1, dtype=torch.uint8, device=device)
    compact[1:][present] = torch.arange(1, int(present.sum()) + 1, dtype=torch.uint8, device=device)
    return compact[out.long()], clips.stats.select(kept[present]), coverage[present]


def temporal_coverage(labels: torch.Tensor, num_instances: int) -> torch.Tensor:
    """float (K,): fraction of the L frames of ``labels`` (L, H, W) int, 0 = none, k + 1 = instance k,
    in which instance k has at least one pixel."""
    flat = labels.reshape(labels.shape[0], -1).long()
    seen = torch.zeros(flat.shape[0], num_instances + 1, dtype=torch.bool, device=labels.device)
    seen.scatter_(1, flat, True)
    return seen[:, 1:].float().mean(0)


def _summary(clips: _Clips) -> TagSummary:
    processed = np.array(sorted(clips.frames), dtype=np.int64)
    parts = (torch.stack([clips.frames[f][i] for f in processed]).cpu().numpy() for i in (2, 3, 4))
    center, axis = clips.projection
    return TagSummary(processed, *parts, center.cpu().numpy(), axis.cpu().numpy())


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
                _sync(device)
            start = time.perf_counter()
            clips = _run_clips(model, frames, plan, cfg, device, keep_tags, precision)
            labels, stats, coverage = _final_labels(clips, num_frames, (height, width), cfg, device)
            classes, scores = stats.ranked_classes(grouping_bandwidth(cfg), cfg.inference.topk_classes)
            if cfg.inference.coverage_score:
                scores = scores * coverage.unsqueeze(1).to(scores.dtype)
            labels = labels.cpu().numpy()
            _sync(device)
            total_s = time.perf_counter() - start
    finally:
        model.train(was_training)
    k = classes.shape[1]
    order = torch.argsort(scores.flatten(), descending=True, stable=True)
    network_frames = sum(int(v.sum()) for _, v in plan)
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
        tags=_summary(clips) if keep_tags else None,
    )


def _merge_stats(clip_stats: list[InstanceStats], clip_tracks: list[torch.Tensor], num_tracks: int) -> InstanceStats:
    """Sum per-clip instance statistics into per-track statistics (modes: count-weighted means)."""
    device = clip_stats[0].counts.device
    ids = torch.cat(clip_tracks).to(device)
    parts = [torch.cat([getattr(s, name) for s in clip_stats]) for name in ("counts", "votes", "prob_sums", "sq_dist_sums", "modes")]
    counts, votes, prob_sums, sq, modes = parts

    def total(t: torch.Tensor) -> torch.Tensor:
        return torch.zeros((num_tracks, *t.shape[1:]), dtype=t.dtype, device=device).index_add_(0, ids, t)

    n = total(counts)
    mode = total(modes * counts[:, None].to(modes.dtype)) / n.clamp_min(1)[:, None].to(modes.dtype)
    return InstanceStats(n, total(votes), total(prob_sums), total(sq), mode)


def predict_dataset(model: nn.Module, dataset: Any, cfg: ExperimentConfig, device: str | torch.device = "cpu",
                    progress: bool = True, keep_tags: bool = False) -> Iterator[tuple[Any, VideoPrediction]]:
    """Yield ``(sample, prediction)`` for every video of ``dataset`` (warm-up before the first only)."""
    from tqdm.auto import tqdm

    for i in tqdm(range(len(dataset)), desc="predict", unit="video", disable=not progress):
        sample = dataset[i]
        warm = cfg.inference.warmup_runs if i == 0 else 0
        yield sample, predict_video(model, sample.frames, cfg, device, warmup_runs=warm, keep_tags=keep_tags)
