"""Full validation of a dataset: every frame and every mask decoded, sizes compared, counts summed."""
from __future__ import annotations

import os
from collections import Counter
from typing import Any

from ..errors import DataFormatError
from .davis import DAVISDataset
from .ytvis import YTVISDataset


def open_dataset(split: str, ytvis: str | os.PathLike | None = None, davis: str | os.PathLike | None = None) -> Any:
    """``YTVISDataset(ytvis, split)`` or ``DAVISDataset(davis, split)``: exactly one root is given."""
    if (ytvis is None) == (davis is None):
        raise ValueError("give exactly one of ytvis= and davis=")
    return YTVISDataset(ytvis, split) if ytvis is not None else DAVISDataset(davis, split)


def check_dataset(dataset: Any) -> dict[str, int]:
    """Decode every video of ``dataset``; raise :class:`DataFormatError` at the first problem.

    First the frame listing: every listed frame (and DAVIS annotation) on disk, and no unlisted image
    file in a video's folder.

    Returns counts: ``videos``, ``frames``, ``instances``, ``categories`` (listed by the dataset),
    ``same_category_pairs`` (pairs of instances of one video sharing a category, summed over videos).
    """
    dataset.check_files(unlisted=True)
    totals = {"videos": 0, "frames": 0, "instances": 0, "categories": len(dataset.categories), "same_category_pairs": 0}
    for i in range(len(dataset)):
        sample = dataset.load(i)
        num, length, height, width = sample.masks.shape
        if (length, height, width) != sample.frames.shape[:3]:
            raise DataFormatError(
                getattr(dataset, "json_path", None) or getattr(dataset, "split_file", None),
                f"video {sample.video_id}",
                f"masks are {length}x{height}x{width} (frames x height x width) but frames {sample.frames.shape[:3]}",
            )
        totals["videos"] += 1
        totals["frames"] += length
        totals["instances"] += num
        totals["same_category_pairs"] += sum(c * (c - 1) // 2 for c in Counter(sample.categories.tolist()).values())
    return totals
