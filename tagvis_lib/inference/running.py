"""Running the clips of a plan: forward, grouping of each clip's tags, and linking into tracks.

:func:`run_clips` leaves, for every frame a clip owns, a :class:`ProcessedFrame` at network
resolution, and per-track statistics summed over the clips (:class:`ClipRun`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..config import ExperimentConfig
from ..model.precision import autocast
from .grouping import InstanceStats, group_clip, grouping_bandwidth
from .linking import LinkedClip, link_clip
from .planning import PlannedClip, clip_owners, network_size, prepare_clip


@dataclass
class ProcessedFrame:
    """One processed frame at network resolution (h, w).

    ``tracks``: int32 0 or track + 1; ``fg_soft``: foreground confidence; with the tags kept,
    ``tag_map`` (float16, the tags on the projection axis), ``foreground`` (bool) and ``semantic``
    (uint8 argmax class).
    """

    tracks: torch.Tensor
    fg_soft: torch.Tensor
    tag_map: torch.Tensor | None = None
    foreground: torch.Tensor | None = None
    semantic: torch.Tensor | None = None


@dataclass
class ClipRun:
    """What the clips of a video leave for the final masks: processed frames by video frame index,
    per-track :class:`InstanceStats`, the track count, the forward seconds, the tag projection
    ``(center (D,), axis (D,))`` when tags are kept, and the frames that went through the network
    (a frame shared by two clips counted twice, each mirrored pass once more; padding not counted)."""

    frames: dict[int, ProcessedFrame]
    stats: InstanceStats
    num_tracks: int
    model_s: float
    projection: tuple[torch.Tensor, torch.Tensor] | None
    network_frames: int = 0


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tag_projection(tags: torch.Tensor, fg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def both_tags(tags: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    """Tags of two passes as one: (D, T, h, w) twice -> (2D, T, h, w), divided by sqrt(2).

    ``mirrored`` holds the mirrored pass's tags already flipped back. Where both passes put two
    instances the same distance d apart, their joint tags are d apart too; a pixel's deviation
    from its instance along that direction shrinks by sqrt(2) when the passes' deviations are
    independent.
    """
    return torch.cat([tags, mirrored]) / math.sqrt(2.0)


def run_clips(model: nn.Module, frames: np.ndarray, plan: list[PlannedClip], cfg: ExperimentConfig,
              device: torch.device, keep_tags: bool, precision: str) -> ClipRun:
    """Forward every clip of the plan (at ``precision``), group its tags and link its instances into tracks.

    With ``inference.flip_average`` each clip also goes through the network mirrored left-right; the
    class probabilities (foreground included) are the mean of both passes, the tags the unmirrored
    pass's (with ``inference.flip_tags``: :func:`both_tags` of both passes), and both passes count as
    network frames and model time.
    """
    size = network_size(cfg)
    bandwidth = grouping_bandwidth(cfg)
    owner = clip_owners(plan, len(frames))
    kept: dict[int, ProcessedFrame] = {}
    clip_stats, clip_tracks = [], []
    prev: LinkedClip | None = None
    num_tracks, model_s, projection = 0, 0.0, None
    for c, (indices, valid) in enumerate(plan):
        x = prepare_clip(frames[indices], size, device)
        sync(device)
        t0 = time.perf_counter()
        with autocast(device, precision):
            out = model(x)
            mirrored = model(x.flip(-1)) if cfg.inference.flip_average else None
        sync(device)
        model_s += time.perf_counter() - t0
        tags, probs = out.tags[0].float(), out.logits[0].float().softmax(0)
        if mirrored is not None:
            probs = (probs + mirrored.logits[0].float().softmax(0).flip(-1)) / 2
            if cfg.inference.flip_tags:
                tags = both_tags(tags, mirrored.tags[0].float().flip(-1))
        groups = group_clip(tags, probs, torch.as_tensor(valid, device=device), cfg)
        tracks = link_clip(prev, indices, valid, groups, tags, bandwidth)
        new = tracks < 0
        tracks[new] = torch.arange(num_tracks, num_tracks + int(new.sum()))
        num_tracks += int(new.sum())
        clip_stats.append(groups.stats)
        clip_tracks.append(tracks)
        prev = LinkedClip(groups, indices, valid, tracks)
        if keep_tags and projection is None:
            projection = tag_projection(tags, groups.fg_soft > 0.5)
        lut = torch.cat([torch.zeros(1, dtype=torch.long), tracks + 1]).to(device)
        for t in np.flatnonzero(valid):
            f = int(indices[t])
            if owner[f] != c or f in kept:
                continue
            frame = ProcessedFrame(lut[groups.labels[t]].to(torch.int32), groups.fg_soft[t])
            if projection is not None:
                center, axis = projection
                frame.tag_map = torch.einsum("dhw,d->hw", tags[:, t] - center[:, None, None], axis).half()
                frame.foreground = groups.fg_soft[t] > 0.5
                frame.semantic = probs[:, t].argmax(0).to(torch.uint8)
            kept[f] = frame
    network_frames = sum(int(v.sum()) for _, v in plan) * (2 if cfg.inference.flip_average else 1)
    return ClipRun(kept, merge_stats(clip_stats, clip_tracks, num_tracks), num_tracks, model_s, projection, network_frames)


def merge_stats(clip_stats: list[InstanceStats], clip_tracks: list[torch.Tensor], num_tracks: int) -> InstanceStats:
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
