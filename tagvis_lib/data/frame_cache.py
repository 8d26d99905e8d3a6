"""Decoded frames and masks kept between epochs: training clips re-read the same frames every epoch.

:class:`FrameCache` sits between :class:`~.torch_dataset.ClipDataset` and a video dataset with
``load(i, frame_indices)``: frames it holds are not read and decoded again. It keeps each decoded
frame (uint8 ``(H, W, 3)``), its instance masks (bit-packed), presence flags, file name and void
mask, up to a byte budget; once full it keeps what it has and decodes the rest as before (random
clips make any eviction rule about as good as none). What it returns equals what the dataset's
``load`` returns for the same frames, so training is bit-identical with or without it. Each
DataLoader worker process holds its own cache.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .sample import VideoSample

#: fields of a sample that do not depend on the frames asked for
_VIDEO_FIELDS = ("video_id", "categories", "iscrowd", "instance_ids")


class _Frame(NamedTuple):
    frame: np.ndarray  #: uint8 (H, W, 3)
    masks: np.ndarray  #: uint8 (N, ceil(H*W/8)): the (N, H, W) masks, bit-packed
    present: np.ndarray  #: bool (N,)
    name: str
    void: np.ndarray | None  #: bool (H, W)

    @property
    def nbytes(self) -> int:
        return self.frame.nbytes + self.masks.nbytes + self.present.nbytes + (0 if self.void is None else self.void.nbytes)


class FrameCache:
    """Decoded frames of one dataset, at most ``budget_bytes`` of them (frames and packed masks)."""

    def __init__(self, budget_bytes: int):
        if budget_bytes < 0:
            raise ValueError(f"frame cache budget must be >= 0 bytes, got {budget_bytes}")
        self.budget = int(budget_bytes)
        self.used = 0  #: bytes held
        self._frames: dict[tuple[int, int], _Frame] = {}
        self._videos: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._frames)

    def load(self, dataset: Any, index: int, indices: np.ndarray) -> VideoSample:
        """``dataset.load(index, indices)``, the frames held here not decoded again (T = len(indices))."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            return dataset.load(index, indices)
        wanted = [int(t) for t in np.unique(indices)]
        found = {t: self._frames[index, t] for t in wanted if (index, t) in self._frames}
        missing = [t for t in wanted if t not in found]
        if missing:
            sample = dataset.load(index, np.asarray(missing, dtype=np.int64))
            self._videos.setdefault(index, _video_fields(sample))
            for j, t in enumerate(missing):
                entry = _frame_of(sample, j)
                found[t] = entry
                if self.used + entry.nbytes <= self.budget:
                    self._frames[index, t] = entry
                    self.used += entry.nbytes
        return _assemble(self._videos[index], [found[int(t)] for t in indices], indices)


def _video_fields(sample: VideoSample) -> dict[str, Any]:
    fields = {name: getattr(sample, name) for name in _VIDEO_FIELDS}
    fields["meta"] = {k: v for k, v in sample.meta.items() if k != "frame_indices"}
    fields["size"] = sample.frames.shape[1:3]
    return fields


def _frame_of(sample: VideoSample, j: int) -> _Frame:
    masks = sample.masks[:, j].reshape(sample.masks.shape[0], -1)
    return _Frame(sample.frames[j].copy(), np.packbits(masks, axis=1), sample.present[:, j].copy(),
                  sample.frame_names[j], None if sample.void is None else sample.void[j].copy())


def _assemble(video: dict[str, Any], frames: list[_Frame], indices: np.ndarray) -> VideoSample:
    """The sample of ``frames`` (one per entry of ``indices``, at least one) of ``video``."""
    height, width = video["size"]
    count = len(video["categories"])
    masks = np.stack([np.unpackbits(f.masks, axis=1, count=height * width) for f in frames], axis=1).astype(bool)
    voids = [f.void for f in frames]
    return VideoSample(
        video_id=video["video_id"],
        frames=np.stack([f.frame for f in frames]),
        masks=masks.reshape(count, len(frames), height, width),
        categories=video["categories"],
        present=np.stack([f.present for f in frames], axis=1),
        frame_names=[f.name for f in frames],
        void=None if voids[0] is None else np.stack(voids),
        iscrowd=video["iscrowd"],
        instance_ids=video["instance_ids"],
        meta={**video["meta"], "frame_indices": indices},
    )
