"""Rendering the processed frames into the video's label maps: the best tracks, interpolation of the
frames no clip processed, upsampling to the frame size, temporal coverage, and the tag summary."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ExperimentConfig
from ..data.clips import interpolation_sources
from .grouping import InstanceStats, grouping_bandwidth
from .running import ClipRun

if TYPE_CHECKING:
    from .predictor import TagSummary


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


def final_labels(clips: ClipRun, num_frames: int, size: tuple[int, int], cfg: ExperimentConfig,
                  device: torch.device) -> tuple[torch.Tensor, InstanceStats, torch.Tensor]:
    """Label maps uint8 (L, H, W) of the best ``max_instances`` tracks that are not empty, with their
    stats and their :func:`temporal_coverage` (K,)."""
    best = clips.stats.ranked_classes(grouping_bandwidth(cfg), 1)[1][:, 0]
    kept = torch.argsort(best, descending=True, stable=True)[: cfg.inference.max_instances].to(device)
    relabel = torch.zeros(clips.num_tracks + 1, dtype=torch.long, device=device)
    relabel[kept + 1] = torch.arange(1, len(kept) + 1, device=device)
    processed = np.array(sorted(clips.frames), dtype=np.int64)
    labels = relabel[torch.stack([clips.frames[f].tracks for f in processed]).long()]
    soft = torch.stack([clips.frames[f].fg_soft for f in processed])
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


def tag_summary(clips: ClipRun) -> "TagSummary":
    """The :class:`~.predictor.TagSummary` of a run whose tags were kept."""
    from .predictor import TagSummary

    processed = np.array(sorted(clips.frames), dtype=np.int64)
    parts = (torch.stack([getattr(clips.frames[f], name) for f in processed]).cpu().numpy()
             for name in ("tag_map", "foreground", "semantic"))
    center, axis = clips.projection
    return TagSummary(processed, *parts, center.cpu().numpy(), axis.cpu().numpy())
