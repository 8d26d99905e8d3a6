"""Which frames make a clip (training and inference), and the clip augmentations.

Training clips (paper section IV: "diverse variations of 32 frame video clip from each video
sequence per epoch by dropping a random number of consecutive frames between 1 to 5"), the rule of
:func:`sample_train_indices` for a video of L frames and clips of T frames:

1. L >= T: the clip keeps T frames in their order. Between two consecutive kept frames lies either
   nothing or ONE dropped run of ``min_drop..max_drop`` consecutive frames. Runs are added one at a
   time: a free gap (one of the T - 1 between kept frames, no gap twice) is drawn uniformly, then a
   run length uniformly in ``min_drop..min(max_drop, budget)``, with ``budget = L - T - dropped so
   far``. It stops when the budget is below ``min_drop`` or every gap holds a run. The clip then
   spans ``T + dropped`` frames, placed at a uniformly drawn start within the video (the random
   window: it covers the whole video when the budget was used up; a long video, whose gaps fill
   first, gives a window of about ``T + (T - 1) * (min_drop + max_drop) / 2`` frames at a random
   place). Each epoch draws afresh, so clips differ from epoch to epoch.
2. L < T (``short_video``): ``"pad"`` takes all L frames then repeats the last one, the repeats
   marked ``valid = False`` (no loss there); ``"loop"`` plays the video forth and back
   (0, 1, .., L-1, L-2, .., 0, 1, ..) until T frames, all valid. No frame is dropped.

Augmentations (:func:`draw_augment_params`, :func:`augment_clip`), drawn once per clip and applied
identically to frames, instance labels and void: temporal flip (frame order reversed, ``valid``
too), random crop (one scale s ~ U(crop_scale_min, 1) for both sides, so the aspect ratio is kept;
position uniform), horizontal flip, then resize to ``(height, width)``: bilinear with antialiasing
for frames (antialiasing only when shrinking; computed on the uint8 frames, so values are whole
grey levels), nearest (pixel-centre aligned, ``nearest-exact``)
for labels.

Inference (:func:`inference_indices`, paper: "process the sequence as a 32 frame video (one clip)
by dropping intermittent frames"): T indices ``floor(linspace(0, L - 1, T) + 0.5)``, strictly
increasing for L >= T; shorter videos are padded by repeating the last frame (``valid`` False).
:func:`interpolation_sources` maps every one of the L frames back to its processed neighbours.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SHORT_VIDEO_RULES = ("pad", "loop")


@dataclass
class ClipIndices:
    """Frames of one clip.

    Attributes:
        indices: int64 ``(T,)`` frame index of every clip position, in clip order.
        valid: bool ``(T,)`` False on padding repeats.
        drops: ``(first frame, run length)`` of every dropped run inside the clip's span, in frame order.
    """

    indices: np.ndarray
    valid: np.ndarray
    drops: list[tuple[int, int]]


def sample_train_indices(
    num_frames: int,
    clip_length: int,
    rng: np.random.Generator,
    min_drop: int = 1,
    max_drop: int = 5,
    short_video: str = "pad",
) -> ClipIndices:
    """Training clip of ``clip_length`` frames from a video of ``num_frames`` (rule in the module doc)."""
    if num_frames < 1 or clip_length < 1:
        raise ValueError(f"need at least one frame and a positive clip length, got {num_frames}, {clip_length}")
    if not 1 <= min_drop <= max_drop:
        raise ValueError(f"need 1 <= min_drop <= max_drop, got {min_drop}, {max_drop}")
    if num_frames < clip_length:
        indices, valid = short_indices(num_frames, clip_length, short_video)
        return ClipIndices(indices, valid, [])
    runs = np.zeros(clip_length - 1, dtype=np.int64)  # run dropped after kept frame j
    budget = num_frames - clip_length
    free = list(range(clip_length - 1))
    while free and budget >= min_drop:
        gap = free.pop(int(rng.integers(len(free))))
        runs[gap] = rng.integers(min_drop, min(max_drop, budget) + 1)
        budget -= int(runs[gap])
    start = int(rng.integers(budget + 1))
    indices = start + np.arange(clip_length) + np.concatenate([[0], np.cumsum(runs)])
    drops = [(int(indices[j]) + 1, int(runs[j])) for j in np.flatnonzero(runs)]
    return ClipIndices(indices.astype(np.int64), np.ones(clip_length, dtype=bool), drops)


def short_indices(num_frames: int, clip_length: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices and valid mask for a video shorter than the clip: ``"pad"`` or ``"loop"``."""
    if rule == "pad":
        indices = np.minimum(np.arange(clip_length), num_frames - 1)
        return indices.astype(np.int64), np.arange(clip_length) < num_frames
    if rule == "loop":
        period = max(2 * num_frames - 2, 1)
        phase = np.arange(clip_length) % period
        indices = np.where(phase < num_frames, phase, period - phase)
        return indices.astype(np.int64), np.ones(clip_length, dtype=bool)
    raise ValueError(f"short_video rule {rule!r}: expected one of {SHORT_VIDEO_RULES}")


def inference_indices(num_frames: int, clip_length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices int64 (T,), valid bool (T,))``: T frames spread evenly over the video, padded if short."""
    if num_frames < clip_length:
        return short_indices(num_frames, clip_length, "pad")
    indices = np.floor(np.linspace(0, num_frames - 1, clip_length) + 0.5).astype(np.int64)
    return indices, np.ones(clip_length, dtype=bool)


def interpolation_sources(num_frames: int, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame of the video, the clip positions to take its mask from.

    Returns ``prev`` int64 ``(L,)``, ``next`` int64 ``(L,)`` and ``weight`` float64 ``(L,)``: frame
    ``l`` gets ``(1 - weight) * clip[prev] + weight * clip[next]`` (nearest: ``clip[next]`` where
    weight >= 0.5). Processed frames map onto themselves with weight 0; frames before the first or
    after the last processed frame take that frame. Repeated indices (padding) use the first position.
    """
    frames, first_pos = np.unique(np.asarray(indices, dtype=np.int64), return_index=True)
    target = np.arange(num_frames)
    right = np.clip(np.searchsorted(frames, target, side="left"), 0, len(frames) - 1)
    left = np.clip(np.where(frames[right] > target, right - 1, right), 0, len(frames) - 1)
    right = np.where(frames[right] < target, left, right)
    span = (frames[right] - frames[left]).astype(np.float64)
    weight = np.where(span > 0, (target - frames[left]) / np.where(span > 0, span, 1.0), 0.0)
    return first_pos[left].astype(np.int64), first_pos[right].astype(np.int64), weight


@dataclass
class AugmentParams:
    """One clip's augmentation: crop box ``(top, left, height, width)`` and the two flips."""

    crop: tuple[int, int, int, int]
    hflip: bool
    tflip: bool


def draw_augment_params(
    rng: np.random.Generator, height: int, width: int, crop_scale_min: float, hflip_prob: float, tflip_prob: float
) -> AugmentParams:
    """Draw a crop of a ``height`` x ``width`` frame (scale U(crop_scale_min, 1), aspect kept) and flips."""
    scale = rng.uniform(crop_scale_min, 1.0)
    ch, cw = max(1, round(scale * height)), max(1, round(scale * width))
    top, left = int(rng.integers(height - ch + 1)), int(rng.integers(width - cw + 1))
    return AugmentParams((top, left, ch, cw), bool(rng.random() < hflip_prob), bool(rng.random() < tflip_prob))


def identity_params(height: int, width: int) -> AugmentParams:
    """No crop, no flip (evaluation clips)."""
    return AugmentParams((0, 0, height, width), False, False)


def augment_clip(
    frames: np.ndarray, labels: np.ndarray, valid: np.ndarray, params: AugmentParams, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply ``params`` to a clip and resize it to ``size = (height, width)``.

    Args:
        frames: uint8 ``(T, H, W, 3)``.
        labels: integer ``(T, H, W)`` per-pixel labels (instance ids, void).
        valid: bool ``(T,)``.

    Returns:
        frames float32 ``(T, 3, height, width)`` in 0..255, labels int64 ``(T, height, width)``,
        valid bool ``(T,)``.
    """
    top, left, ch, cw = params.crop
    frames = frames[:, top:top + ch, left:left + cw]
    labels = labels[:, top:top + ch, left:left + cw]
    if params.tflip:
        frames, labels, valid = frames[::-1], labels[::-1], valid[::-1]
    if params.hflip:
        frames, labels = frames[:, :, ::-1], labels[:, :, ::-1]
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # uint8, channels-last view
    y = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
    if (ch, cw) != tuple(size):
        shrink = ch > size[0] or cw > size[1]
        # on uint8 channels-last frames (rounded to whole grey levels): about 10x faster than on floats
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
        y = F.interpolate(y[:, None].float(), size=size, mode="nearest-exact")[:, 0].long()
    return x.float().contiguous(), y, torch.from_numpy(np.ascontiguousarray(valid))


SHORT_VIDEO = ("pad", "loop")


def check_data_config(cfg) -> None:
    """Raise ``ValueError`` naming the field of a DataConfig (``cfg.data``) that cannot make clips."""
    d = cfg.data
    if d.clip_length < 1:
        raise ValueError(f"data.clip_length: expected >= 1 frame, got {d.clip_length}")
    if d.height < 8 or d.width < 8:
        raise ValueError(f"data.height, data.width: expected >= 8 pixels, got {d.height} x {d.width}")
    if not 0 <= d.min_drop <= d.max_drop:
        raise ValueError(f"data.min_drop, data.max_drop: expected 0 <= min_drop <= max_drop, got {d.min_drop}, {d.max_drop}")
    if not 0 < d.crop_scale_min <= 1:
        raise ValueError(f"data.crop_scale_min: expected a value in (0, 1], got {d.crop_scale_min}")
    for name in ("hflip_prob", "tflip_prob"):
        if not 0 <= getattr(d, name) <= 1:
            raise ValueError(f"data.{name}: expected a probability in [0, 1], got {getattr(d, name)}")
    if d.short_video not in SHORT_VIDEO:
        raise ValueError(f"data.short_video: expected one of {SHORT_VIDEO}, got {d.short_video!r}")
    if d.num_workers < 0 or d.max_instances < 1:
        raise ValueError(f"data.num_workers >= 0 and data.max_instances >= 1, got {d.num_workers}, {d.max_instances}")
    if d.frame_cache_mb < 0:
        raise ValueError(f"data.frame_cache_mb: expected >= 0 MiB (0: no cache), got {d.frame_cache_mb}")

