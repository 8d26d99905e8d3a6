"""Torch ``Dataset`` of training/evaluation clips and the batch collate.

:class:`ClipDataset` wraps a video dataset (:class:`YTVISDataset`, :class:`DAVISDataset`, or any
sequence of :class:`VideoSample`) and yields one clip per video. Only the clip's frames are decoded
(datasets with ``num_frames(i)`` and ``load(i, frame_indices)``). Per item:

- instance labels: each instance is painted into one label map, largest (by pixels in the clip's
  frames) first, so where masks overlap the smaller instance wins; crowd instances and void become
  ``IGNORE_INDEX``; after augmentation the instances are renumbered 1..N by pixel count, largest
  first, and instances beyond ``DataConfig.max_instances`` become ``IGNORE_INDEX`` (neither
  foreground nor background); instances with no pixel left in the clip are dropped; padded
  (invalid) frames are ``IGNORE_INDEX`` throughout.
- randomness: every draw comes from ``numpy.random.default_rng([seed, epoch, index])``, so a clip
  depends only on (seed, epoch, index): not on workers, order or earlier items, and resumed
  training reproduces it. ``set_epoch`` writes a shared-memory tensor, so it reaches DataLoader
  workers, persistent ones included.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..constants import IGNORE_INDEX
from .clips import augment_clip, draw_augment_params, identity_params, inference_indices, sample_train_indices
from .frame_cache import FrameCache
from .normalization import normalize
from .sample import VideoSample



class ClipDataset(torch.utils.data.Dataset):
    """One clip per video.

    Args:
        dataset: video dataset (``len``, ``[i] -> VideoSample``, ``class_index(category_id)``; uses
            ``num_frames(i)``/``load(i, frame_indices)`` when present) or a list of VideoSample,
            whose category ids are then the class indices.
        data_cfg: clip length, size, drops, augmentation, short-video rule, max instances.
        train: True: training sampling and augmentation; False: :func:`inference_indices`, resize only.
        seed: base seed of every random draw.

    Items are dicts: ``frames`` float32 ``(3, T, H, W)`` Kinetics-normalised, ``instance_ids`` int64
    ``(T, H, W)`` (0 background, 1..N, IGNORE_INDEX), ``semantic`` int64 ``(T, H, W)`` (class index
    0..C or IGNORE_INDEX), ``categories`` int64 ``(N,)`` class index of instance k + 1, ``valid`` bool
    ``(T,)``, ``frame_indices`` int64 ``(T,)`` frame of the video at each clip position, ``video_id``.
    """

    def __init__(self, dataset: Any, data_cfg: DataConfig, train: bool = True, seed: int = 0):
        self.dataset = dataset
        self.cfg = data_cfg
        self.train = train
        self.seed = seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        budget = data_cfg.frame_cache_mb << 20
        self.cache = FrameCache(budget) if budget and train and hasattr(dataset, "load") else None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose clips ``__getitem__`` makes (also inside DataLoader workers)."""
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def class_index(self, category_id: int) -> int:
        if hasattr(self.dataset, "class_index"):
            return int(self.dataset.class_index(int(category_id)))
        return int(category_id)

    def __getitem__(self, index: int) -> dict[str, Any]:
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, self.epoch, index])
        num_frames = self.dataset.num_frames(index) if hasattr(self.dataset, "num_frames") else self.dataset[index].num_frames
        if self.train:
            clip = sample_train_indices(num_frames, cfg.clip_length, rng, cfg.min_drop, cfg.max_drop, cfg.short_video)
            indices, valid = clip.indices, clip.valid
        else:
            indices, valid = inference_indices(num_frames, cfg.clip_length)
        sample = _load(self.dataset, index, indices) if self.cache is None else self.cache.load(self.dataset, index, indices)
        labels = instance_label_map(sample)
        height, width = sample.size
        if self.train:
            params = draw_augment_params(rng, height, width, cfg.crop_scale_min, cfg.hflip_prob, cfg.tflip_prob)
        else:
            params = identity_params(height, width)
        frames, labels_t, valid_t = augment_clip(sample.frames, labels, valid, params, (cfg.height, cfg.width))
        frame_indices = torch.from_numpy(indices[::-1].copy() if params.tflip else indices.copy())
        labels_t[~valid_t] = IGNORE_INDEX
        classes = np.array([self.class_index(c) for c in sample.categories], dtype=np.int64)
        instance_ids, categories = renumber_instances(labels_t, torch.from_numpy(classes), cfg.max_instances)
        lut = torch.full((IGNORE_INDEX + 1,), IGNORE_INDEX, dtype=torch.int64)
        lut[0] = 0
        lut[1:len(categories) + 1] = categories
        return {
            "frames": normalize(frames.permute(1, 0, 2, 3), channel_dim=0).contiguous(),
            "instance_ids": instance_ids,
            "semantic": lut[instance_ids],
            "categories": categories,
            "valid": valid_t,
            "frame_indices": frame_indices,
            "video_id": sample.video_id,
        }


def _load(dataset: Any, index: int, indices: np.ndarray) -> VideoSample:
    if hasattr(dataset, "load"):
        return dataset.load(index, indices)
    full: VideoSample = dataset[index]
    return VideoSample(
        video_id=full.video_id, frames=full.frames[indices], masks=full.masks[:, indices],
        categories=full.categories, present=full.present[:, indices],
        frame_names=[full.frame_names[t] for t in indices],
        void=None if full.void is None else full.void[indices], iscrowd=full.iscrowd,
        instance_ids=full.instance_ids, meta=full.meta,
    )


def instance_label_map(sample: VideoSample) -> np.ndarray:
    """int16 ``(T, H, W)``: 0 background, k + 1 for instance k, IGNORE_INDEX for void and crowd.

    Instances are painted largest first (pixels over the sample's frames), so the smaller one wins
    where masks overlap. Requires fewer than IGNORE_INDEX instances.
    """
    count = sample.num_instances
    if count >= IGNORE_INDEX:
        raise ValueError(f"{count} instances in video {sample.video_id}; at most {IGNORE_INDEX - 1} supported")
    labels = np.zeros(sample.masks.shape[1:], dtype=np.int16)
    areas = sample.masks.sum(axis=(1, 2, 3))
    crowd = sample.iscrowd if sample.iscrowd is not None else np.zeros(count, dtype=bool)
    for k in np.argsort(-areas, kind="stable"):
        labels[sample.masks[k]] = IGNORE_INDEX if crowd[k] else k + 1
    if sample.void is not None:
        labels[sample.void] = IGNORE_INDEX
    return labels


def renumber_instances(labels: torch.Tensor, classes: torch.Tensor, max_instances: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Renumber instance labels 1..N by pixel count (largest first), keeping at most ``max_instances``.

    Args:
        labels: int64 ``(T, H, W)`` with 0, k + 1 for instance k, IGNORE_INDEX.
        classes: int64 ``(K,)`` class index of instance k.

    Returns:
        instance ids int64 ``(T, H, W)`` (0, 1..N, IGNORE_INDEX) and categories int64 ``(N,)``.
    """
    counts = torch.bincount(labels.flatten(), minlength=IGNORE_INDEX + 1)[1:len(classes) + 1]
    order = torch.argsort(-counts, stable=True)
    keep = order[counts[order] > 0][:max_instances]
    remap = torch.full((IGNORE_INDEX + 1,), IGNORE_INDEX, dtype=torch.int64)
    remap[0] = 0
    remap[1:len(classes) + 1] = torch.where(counts > 0, IGNORE_INDEX, 0)  # beyond max_instances: ignored
    remap[keep + 1] = torch.arange(1, len(keep) + 1)
    return remap[labels], classes[keep]


def collate_clips(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch of items: ``frames`` (B,3,T,H,W), ``instance_ids``/``semantic`` (B,T,H,W), ``valid`` (B,T),
    ``frame_indices`` (B,T), ``categories`` int64 (B, Nmax) padded with 0, ``video_id`` list."""
    nmax = max(len(item["categories"]) for item in items)
    categories = torch.zeros((len(items), nmax), dtype=torch.int64)
    for b, item in enumerate(items):
        categories[b, :len(item["categories"])] = item["categories"]
    batch: dict[str, Any] = {key: torch.stack([item[key] for item in items])
                             for key in ("frames", "instance_ids", "semantic", "valid", "frame_indices")}
    batch["categories"] = categories
    batch["video_id"] = [item["video_id"] for item in items]
    return batch
