"""Planning the clips of a video: which frames each clip holds, which clip owns each frame, and the
network input of a clip.

A plan is a list of :class:`PlannedClip`; ``inference.long_video="single_clip"`` gives one clip of
``clip_length`` frames spread over the video (padded when shorter), ``"overlapping"`` consecutive
clips sharing ``clip_overlap`` frames.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ExperimentConfig
from ..data.clips import inference_indices
from ..data.normalization import normalize


class PlannedClip(NamedTuple):
    """One clip of a plan: video frame of each position int64 (T,), and whether it is real bool (T,)."""

    indices: np.ndarray
    valid: np.ndarray


def inference_clip_length(cfg: ExperimentConfig) -> int:
    """Frames per processed clip: ``inference.clip_length``, or else the training clip's ``data.clip_length``."""
    return cfg.inference.clip_length or cfg.data.clip_length


def network_size(cfg: ExperimentConfig) -> tuple[int, int]:
    """(h, w) the frames are resized to: ``inference.height/width`` or else ``data.height/width``."""
    return cfg.inference.height or cfg.data.height, cfg.inference.width or cfg.data.width


def prepare_clip(frames: np.ndarray, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> float32 (1, 3, T, h, w) resized (bilinear, antialiased) and
    Kinetics-normalised.

    On the CPU the resize runs on the uint8 frames (a channels-last view; values rounded to whole
    grey levels, as in training clips), about 10x faster than on floats; elsewhere on floats.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2)
    resized = tuple(x.shape[-2:]) != tuple(size)
    if resized and x.device.type == "cpu":
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    x = x.float() / 255.0
    if resized and x.device.type != "cpu":
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return normalize(x, channel_dim=1, scale=1.0).permute(1, 0, 2, 3)[None].contiguous()


def clip_plan(num_frames: int, cfg: ExperimentConfig) -> list[PlannedClip]:
    """The clips processed for a video, in order."""
    length = inference_clip_length(cfg)
    if cfg.inference.long_video == "single_clip" or num_frames <= length:
        indices, valid = inference_indices(num_frames, length)
        return [PlannedClip(np.asarray(indices, dtype=np.int64), np.asarray(valid, dtype=bool))]
    stride = length - cfg.inference.clip_overlap
    starts = list(range(0, num_frames - length + 1, stride))
    if starts[-1] != num_frames - length:
        starts.append(num_frames - length)
    return [PlannedClip(np.arange(s, s + length, dtype=np.int64), np.ones(length, dtype=bool)) for s in starts]


def clip_owners(plan: list[PlannedClip], num_frames: int) -> np.ndarray:
    """int (L,): for each frame, the clip whose centre is nearest among the clips that process it."""
    dist = np.full((len(plan), num_frames), np.inf)
    for c, (indices, valid) in enumerate(plan):
        frames = indices[valid]
        dist[c, frames] = np.abs(frames - frames.mean())
    return dist.argmin(0)
