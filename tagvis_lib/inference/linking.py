"""Linking the instances of consecutive overlapping clips (``inference.long_video="overlapping"``).

Beyond the paper, which processes one clip per video. Two clips that share frames each group their
own tags, and tags of separate forward passes need not agree in value, so the link compares both
clips in the NEW clip's tag space on the shared frames:

- mask IoU: the previous instance's pixels against the new instance's pixels, over the shared frames;
- tag agreement: the mean new-clip tag over the previous instance's pixels against the new
  instance's mode, ``exp(-d^2 / (2 bandwidth^2))`` (1 when the new clip tags those pixels exactly
  with that instance's tag).

Similarity = (IoU + tag agreement) / 2; a Hungarian assignment (scipy) maximises the total, and a
pair is linked when its similarity exceeds ``LINK_MIN_SIMILARITY`` (a perfect tag agreement alone
is not enough: some overlap is required). Unlinked new instances start new tracks.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .grouping import ClipGroups

LINK_MIN_SIMILARITY = 0.5


def link_similarity(prev_labels: torch.Tensor, new_labels: torch.Tensor, new_tags: torch.Tensor,
                    new_modes: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Similarity (Kp, Kn) of the previous clip's instances to the new clip's on shared frames.

    prev_labels, new_labels: int64 (S, h, w), 0 = none, k + 1 = instance k, same S shared frames;
    new_tags: (D, S, h, w) tags of the new clip on those frames; new_modes: (Kn, D).
    """
    kp = int(prev_labels.max()) if prev_labels.numel() else 0
    kn = len(new_modes)
    a, b = prev_labels.flatten(), new_labels.flatten()
    joint = torch.bincount(a * (kn + 1) + b, minlength=(kp + 1) * (kn + 1)).view(kp + 1, kn + 1).double()
    area_p, area_n = joint.sum(1)[1:], joint.sum(0)[1:]
    inter = joint[1:, 1:]
    union = area_p[:, None] + area_n[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))
    x = new_tags.flatten(1).T.double()  # (n, D)
    sums = torch.zeros(kp + 1, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, a, x)[1:]
    means = sums / area_p.clamp_min(1)[:, None]
    d2 = torch.cdist(means, new_modes.double()) ** 2 if kp and kn else torch.zeros(kp, kn, dtype=x.dtype, device=x.device)
    agree = torch.exp(-d2 / (2 * bandwidth * bandwidth)) * (area_p[:, None] > 0)
    return (iou + agree) / 2


def match_instances(similarity: torch.Tensor) -> np.ndarray:
    """For each new instance (columns), the linked previous instance (row) or -1."""
    sim = similarity.cpu().numpy()
    match = np.full(sim.shape[1], -1, dtype=np.int64)
    if sim.size:
        rows, cols = linear_sum_assignment(sim, maximize=True)
        ok = sim[rows, cols] > LINK_MIN_SIMILARITY
        match[cols[ok]] = rows[ok]
    return match


class LinkedClip(NamedTuple):
    """A clip already linked: its groups, frame indices (T,), valid (T,), and track of each instance (K,)."""

    groups: ClipGroups
    indices: np.ndarray
    valid: np.ndarray
    tracks: torch.Tensor


def link_clip(prev: LinkedClip | None, indices: np.ndarray, valid: np.ndarray, groups: ClipGroups, tags: torch.Tensor,
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
