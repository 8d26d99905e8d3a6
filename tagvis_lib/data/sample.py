"""The video sample every reader yields."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class VideoSample:
    """One annotated (or unannotated) video, fully decoded.

    Dimensions: ``N`` instances, ``T`` frames, ``H`` x ``W`` pixels.

    Attributes:
        video_id: the dataset's id (YouTube-VIS integer id, DAVIS sequence name, file stem).
        frames: uint8 ``(T, H, W, 3)`` RGB.
        masks: bool ``(N, T, H, W)`` instance masks (``N = 0`` for unannotated videos).
        categories: int64 ``(N,)`` dataset category id of each instance (DAVIS: 1 for every object).
        present: bool ``(N, T)``, False where the annotation says the instance is absent (null).
        frame_names: ``T`` frame file names as the dataset lists them.
        void: bool ``(T, H, W)`` pixels to ignore (DAVIS label 255), or None.
        iscrowd: bool ``(N,)`` crowd flags (YouTube-VIS), all False elsewhere.
        instance_ids: int64 ``(N,)`` the dataset's annotation id (YTVIS) or object label (DAVIS).
    """

    video_id: int | str
    frames: np.ndarray
    masks: np.ndarray
    categories: np.ndarray
    present: np.ndarray
    frame_names: list[str]
    void: np.ndarray | None = None
    iscrowd: np.ndarray | None = None
    instance_ids: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_instances(self) -> int:
        return int(self.masks.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])
