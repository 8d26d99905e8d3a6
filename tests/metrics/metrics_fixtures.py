"""Small generated YouTube-VIS and DAVIS inputs for the metric tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils


def box(h: int, w: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    """(h, w) bool mask of rows y0..y1-1 and columns x0..x1-1."""
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def rle(mask: np.ndarray | None, compressed: bool = True) -> dict | None:
    """COCO RLE of a (h, w) bool mask (string counts, or list counts when not compressed)."""
    if mask is None:
        return None
    out = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    if compressed:
        return {"size": list(mask.shape), "counts": out["counts"].decode()}
    flat = mask.flatten(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return {"size": list(mask.shape), "counts": ([0] + counts) if flat[0] else counts}


def track_rles(masks: np.ndarray) -> list[dict | None]:
    """Per-frame compressed RLE of a (T, h, w) bool track, None for frames where it is empty."""
    return [rle(m) if m.any() else None for m in masks]


def ytvis_gt(videos: dict[int, tuple[int, int, int]], tracks: list[dict],
             categories: tuple[int, ...] = (1, 2)) -> dict:
    """Ground truth dict. videos: id -> (h, w, length); tracks: {video_id, category_id, masks:
    per-frame bool masks or None, [iscrowd], [id], [areas]} (uncompressed RLEs, as train.json)."""
    anns = []
    for i, t in enumerate(tracks):
        masks = t["masks"]
        anns.append({"id": t.get("id", i + 1), "video_id": t["video_id"],
                     "category_id": t["category_id"], "iscrowd": t.get("iscrowd", 0),
                     "segmentations": [rle(m, compressed=False) for m in masks],
                     "areas": t.get("areas", [None if m is None else int(m.sum()) for m in masks]),
                     "bboxes": [None] * len(masks)})
    return {"videos": [{"id": v, "height": h, "width": w, "length": n,
                        "file_names": [f"v{v}/{f:05d}.jpg" for f in range(n)]}
                       for v, (h, w, n) in videos.items()],
            "categories": [{"id": c, "name": f"c{c}", "supercategory": "x"} for c in categories],
            "annotations": anns}


def detection(video_id: int, category_id: int, score: float, masks: list) -> dict:
    return {"video_id": video_id, "category_id": category_id, "score": score,
            "segmentations": [rle(m) for m in masks]}


def save_labels(labels: np.ndarray, path: Path, mode: str = "P") -> None:
    """Write an (H, W) label map as a palette (P) or grey (L) PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(labels.astype(np.uint8))
    if mode == "P":  # an L image with a palette becomes P with the same indices
        img.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, i)])
    img.save(path)


def davis_tree(root: Path, gts: dict[str, list[np.ndarray]], results: dict[str, list[np.ndarray]],
               split: str = "val") -> tuple[Path, Path]:
    """Write DAVIS annotations (palette PNGs) and results; returns (davis_root, results_root)."""
    davis, res = root / "DAVIS", root / "results"
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / f"{split}.txt").write_text("\n".join(gts) + "\n")
    for seq, frames in gts.items():
        for f, labels in enumerate(frames):
            save_labels(labels, davis / "Annotations_unsupervised" / "480p" / seq / f"{f:05d}.png")
    for seq, frames in results.items():
        for f, labels in enumerate(frames):
            save_labels(labels, res / seq / f"{f:05d}.png", mode="P" if f % 2 else "L")
    return davis, res
