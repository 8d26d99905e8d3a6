"""Bridging gaps: one track for an instance that vanishes for a stretch and comes back.

Beyond the paper, which tags a whole video in one clip, so that an instance keeps its tag across
the frames where it is hidden. Overlapping short clips (``inference.long_video="overlapping"``)
are linked only through the frames they share (:mod:`.linking`), so an instance that leaves the
view (or that the camera looks away from) and comes back starts a new track. With
``inference.bridge_gaps`` such tracks are joined the paper's way, by the tags of one forward pass:

1. candidates: track ``a`` ends (last processed frame with pixels ``l_a``) before track ``b``
   starts (first such frame ``f_b > l_a``), and both have the same majority class;
2. the two frames ``(l_a, f_b)`` go through the network as one 2-frame clip (once per distinct
   frame pair); ``d(a, b)`` is the distance between the mean tag of ``a``'s pixels in the first
   frame and the mean tag of ``b``'s pixels in the second;
3. pairs with ``d`` below ``inference.bridge_bandwidth`` (None: the grouping bandwidth) are
   joined, closest first, each track keeping at most one predecessor and one successor, so that a
   joined track is a chain of tracks in time order.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from torch import nn

from ..config import ExperimentConfig
from ..model.precision import autocast
from .grouping import grouping_bandwidth
from .planning import network_size, prepare_clip
from .running import ClipRun, ProcessedFrame, merge_stats, sync

#: Most candidate pairs of tracks measured per video (shortest gaps first).
MAX_BRIDGE_PAIRS = 256


def track_spans(run: ClipRun) -> tuple[np.ndarray, np.ndarray]:
    """First and last processed frame of every track of ``run``: int64 (K,) each, -1 for a track
    with no pixel left."""
    first = np.full(run.num_tracks, -1, dtype=np.int64)
    last = np.full(run.num_tracks, -1, dtype=np.int64)
    for f in sorted(run.frames):
        present = torch.bincount(run.frames[f].tracks.flatten().long(), minlength=run.num_tracks + 1)[1:] > 0
        ids = np.flatnonzero(present.cpu().numpy())
        first[ids[first[ids] < 0]] = f
        last[ids] = f
    return first, last


def candidate_pairs(first: np.ndarray, last: np.ndarray, classes: np.ndarray) -> list[tuple[int, int]]:
    """Pairs ``(a, b)`` of tracks where ``a`` ends before ``b`` starts and both have the same class,
    shortest gap first (at most :data:`MAX_BRIDGE_PAIRS`)."""
    alive = np.flatnonzero(first >= 0)
    pairs = [(int(first[b] - last[a]), int(a), int(b)) for a in alive for b in alive
             if last[a] < first[b] and classes[a] == classes[b]]
    pairs.sort()
    return [(a, b) for _, a, b in pairs[:MAX_BRIDGE_PAIRS]]


def mean_tag(tags: torch.Tensor, labels: torch.Tensor, track: int) -> torch.Tensor:
    """Mean of ``tags`` (D, h, w) over the pixels where ``labels`` (h, w) is ``track + 1``: (D,)."""
    mask = labels == track + 1
    return tags[:, mask].mean(1)


def pair_distances(model: nn.Module, frames: np.ndarray, run: ClipRun, pairs: list[tuple[int, int]],
                   first: np.ndarray, last: np.ndarray, cfg: ExperimentConfig, device: torch.device,
                   precision: str) -> tuple[np.ndarray, int, float]:
    """``d(a, b)`` (float64 (P,)) in a joint forward pass of frames ``(l_a, f_b)``; also the frames
    that went through the network and the forward seconds."""
    size = network_size(cfg)
    tags_of: dict[tuple[int, int], torch.Tensor] = {}
    out = np.empty(len(pairs))
    seconds = 0.0
    for i, (a, b) in enumerate(pairs):
        key = (int(last[a]), int(first[b]))
        if key not in tags_of:
            x = prepare_clip(frames[list(key)], size, device)
            sync(device)
            start = time.perf_counter()
            with autocast(device, precision):
                tags_of[key] = model(x).tags[0].float()  # (D, 2, h, w)
            sync(device)
            seconds += time.perf_counter() - start
        tags = tags_of[key]
        ta = mean_tag(tags[:, 0], run.frames[key[0]].tracks, a)
        tb = mean_tag(tags[:, 1], run.frames[key[1]].tracks, b)
        out[i] = float((ta - tb).norm())  # both masks are non-empty: the spans come from these frames
    return out, 2 * len(tags_of), seconds


def choose_links(pairs: list[tuple[int, int]], distances: np.ndarray, bandwidth: float, num_tracks: int) -> np.ndarray:
    """Root track of every track (int64 (K,)) after joining pairs closer than ``bandwidth``, closest
    first, each track keeping at most one predecessor and one successor."""
    successor = np.full(num_tracks, -1, dtype=np.int64)
    predecessor = np.full(num_tracks, -1, dtype=np.int64)
    for i in np.argsort(distances, kind="stable"):
        a, b = pairs[i]
        if distances[i] >= bandwidth:
            break
        if successor[a] < 0 and predecessor[b] < 0:
            successor[a], predecessor[b] = b, a
    root = np.arange(num_tracks, dtype=np.int64)
    for k in range(num_tracks):
        r = k
        while predecessor[r] >= 0:
            r = predecessor[r]
        root[k] = r
    return root


def bridge_gaps(model: nn.Module, frames: np.ndarray, run: ClipRun, cfg: ExperimentConfig, device: torch.device,
                precision: str) -> ClipRun:
    """``run`` with the tracks that :func:`choose_links` joins made one (renumbered 0..K'-1), its
    forward seconds and network frames including the bridging passes.

    frames: uint8 (L, H, W, 3), the video ``run`` was computed from.
    """
    if run.num_tracks < 2:
        return run
    first, last = track_spans(run)
    classes = run.stats.votes.argmax(1).cpu().numpy()
    pairs = candidate_pairs(first, last, classes)
    if not pairs:
        return run
    distances, network_frames, seconds = pair_distances(model, frames, run, pairs, first, last, cfg, device, precision)
    bandwidth = cfg.inference.bridge_bandwidth
    root = choose_links(pairs, distances, grouping_bandwidth(cfg) if bandwidth is None else bandwidth, run.num_tracks)
    roots, new_id = np.unique(root, return_inverse=True)
    extra = {"model_s": run.model_s + seconds, "network_frames": run.network_frames + network_frames}
    if len(roots) == run.num_tracks:
        return dataclasses.replace(run, **extra)
    ids = torch.as_tensor(new_id, dtype=torch.long, device=run.stats.counts.device)
    stats = merge_stats([run.stats], [ids], len(roots))
    lut = torch.cat([torch.zeros(1, dtype=torch.long), ids.cpu() + 1])
    kept = {}
    for f, frame in run.frames.items():
        lut_dev = lut.to(frame.tracks.device)
        kept[f] = ProcessedFrame(lut_dev[frame.tracks.long()].to(torch.int32), frame.fg_soft, frame.tag_map,
                                 frame.foreground, frame.semantic)
    return dataclasses.replace(run, frames=kept, stats=stats, num_tracks=len(roots), **extra)
