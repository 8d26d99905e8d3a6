"""Hold out part of a YouTube-VIS ``train.json`` as a local validation split.

``split_ytvis(root, holdout, seed)`` writes ``root/train_sub.json`` and ``root/valid_sub.json``;
both keep the categories, ``info`` and ``licenses`` of ``train.json`` and read their frames from
``root/train/JPEGImages/`` (see :data:`tagvis_lib.data.ytvis.FRAME_SPLITS`).

Rule: whole videos move, never parts of one. ``round(holdout * videos)`` videos are held out (at
least one when ``holdout > 0`` and there are two videos or more; at most all but one). Videos are
visited in an order drawn from ``numpy.random.default_rng(seed)``; a video is held out when every
category it contains keeps at least one instance in the remaining train videos. When too few videos
pass that test, the rest are taken in the same order regardless (every category kept in train
"where possible"); the categories then missing from train are reported.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.atomic import write_json
from .ytvis import YTVISDataset, load_ytvis_json


def split_ytvis(root: str | os.PathLike, holdout: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Write ``train_sub.json``/``valid_sub.json`` under ``root``; return the category balance.

    Returns ``{"train_videos", "valid_videos", "categories": {name: [train instances, valid
    instances]}, "missing_in_train": [names]}``.
    """
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must lie in [0, 1), got {holdout}")
    root = Path(root)
    YTVISDataset(root, "train")  # validates train.json (structure, ids, segmentation lengths)
    data = load_ytvis_json(root / "train.json")
    videos, annotations = data["videos"], data["annotations"]
    cats_of = {v["id"]: Counter() for v in videos}
    for ann in annotations:
        cats_of[ann["video_id"]][ann["category_id"]] += 1
    total = sum((cats_of[v["id"]] for v in videos), Counter())
    count = min(max(round(holdout * len(videos)), 1 if holdout > 0 and len(videos) > 1 else 0), len(videos) - 1)
    order = [videos[i]["id"] for i in np.random.default_rng(seed).permutation(len(videos))]
    held: list[int] = []
    remaining = Counter(total)
    for vid in order:
        if len(held) == count:
            break
        if all(remaining[c] > n for c, n in cats_of[vid].items()):
            held.append(vid)
            remaining -= cats_of[vid]
    for vid in order:
        if len(held) == count:
            break
        if vid not in held:
            held.append(vid)
    held_set = set(held)
    for name, keep in (("train_sub", lambda v: v not in held_set), ("valid_sub", lambda v: v in held_set)):
        subset = {k: v for k, v in data.items() if k not in ("videos", "annotations")}
        subset["videos"] = [v for v in videos if keep(v["id"])]
        subset["annotations"] = [a for a in annotations if keep(a["video_id"])]
        subset["tagvis_split"] = {"source": "train.json", "holdout": holdout, "seed": seed}
        write_json(root / f"{name}.json", subset)
    valid_counts = sum((cats_of[v] for v in held), Counter())
    names = {c["id"]: c.get("name", str(c["id"])) for c in data["categories"]}
    return {
        "train_videos": len(videos) - len(held),
        "valid_videos": len(held),
        "categories": {names[c]: [total[c] - valid_counts[c], valid_counts[c]] for c in sorted(names)},
        "missing_in_train": [names[c] for c in sorted(names) if total[c] > 0 and total[c] == valid_counts[c]],
    }
