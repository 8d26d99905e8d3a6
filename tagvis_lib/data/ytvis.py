"""YouTube-VIS 2019/2021: the reader of ``<root>/<split>.json`` + ``<root>/<split>/JPEGImages/``, and RLE.

The JSON is read and its structure validated when the dataset is opened (cheap: keys, list
lengths, RLE sizes); frames and masks are decoded only when a video is accessed, so a dataset is
never held whole in memory. Splits made by ``tagvis split`` (``train_sub``, ``valid_sub``) read their
frames from ``<root>/train/JPEGImages/``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils

from ..errors import DataFormatError
from .sample import VideoSample
from .video import read_image

#: Split name -> the split whose ``JPEGImages`` folder holds its frames (default: itself).
FRAME_SPLITS = {"train_sub": "train", "valid_sub": "train"}
#: File suffixes counted as frames by :meth:`YTVISDataset.check_files`.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Splits published without annotations (server evaluation); their JSON may lack ``annotations``.
UNANNOTATED_SPLITS = ("valid", "test")


class YTVISDataset:
    """A YouTube-VIS split; ``dataset[i]`` decodes video ``i`` into a :class:`VideoSample`.

    Args:
        root: folder holding ``<split>.json`` and ``<split>/JPEGImages/``.
        split: ``train``, ``valid``, ``test``, ``train_sub``, ``valid_sub``, ...
        require_annotations: whether a missing ``annotations`` key is an error. ``None`` (default):
            required except for the published server splits ``valid`` and ``test``, whose videos
            then have no instances.

    Class index (model channel) of a category is its position in :attr:`categories` (sorted by id)
    plus one; 0 is background.
    """

    def __init__(self, root: str | os.PathLike, split: str, require_annotations: bool | None = None):
        self.root = Path(root)
        self.split = split
        self.json_path = self.root / f"{split}.json"
        self.frames_dir = self.root / FRAME_SPLITS.get(split, split) / "JPEGImages"
        if require_annotations is None:
            require_annotations = split not in UNANNOTATED_SPLITS
        data = load_ytvis_json(self.json_path)
        self.categories = _parse_categories(self.json_path, data)
        self._class_of = {c["id"]: i + 1 for i, c in enumerate(self.categories)}
        self._videos = _parse_videos(self.json_path, data)
        index = {v["id"]: i for i, v in enumerate(self._videos)}
        if data.get("annotations") is None and require_annotations:
            raise DataFormatError(
                self.json_path, "annotations", "expected a list of annotations (the key is missing or null)"
            )
        annotations = data.get("annotations") or []
        if not isinstance(annotations, list):
            raise DataFormatError(self.json_path, "annotations", "expected a list of annotations")
        #: per video: (position in the JSON annotation list, annotation)
        self._annotations: list[list[tuple[int, dict]]] = [[] for _ in self._videos]
        for k, ann in enumerate(annotations):
            self._check_annotation(k, ann, index)
            self._annotations[index[ann["video_id"]]].append((k, ann))

    def _check_annotation(self, k: int, ann: Any, index: dict) -> None:
        where = f"annotations[{k}]"
        if not isinstance(ann, dict):
            raise DataFormatError(self.json_path, where, "expected an object")
        for key in ("video_id", "category_id", "segmentations"):
            if key not in ann:
                raise DataFormatError(self.json_path, f"{where}.{key}", "missing")
        if ann["video_id"] not in index:
            raise DataFormatError(self.json_path, f"{where}.video_id", f"no video has id {ann['video_id']!r}")
        if ann["category_id"] not in self._class_of:
            raise DataFormatError(self.json_path, f"{where}.category_id", f"unknown category {ann['category_id']!r}")
        video = self._videos[index[ann["video_id"]]]
        segs = ann["segmentations"]
        if not isinstance(segs, list) or len(segs) != video["length"]:
            got = len(segs) if isinstance(segs, list) else type(segs).__name__
            raise DataFormatError(
                self.json_path,
                f"{where}.segmentations",
                f"expected a list of {video['length']} entries (the length of video {video['id']}), got {got}",
            )
        size = [video["height"], video["width"]]
        for t, seg in enumerate(segs):
            if seg is None:
                continue
            if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
                raise DataFormatError(self.json_path, f"{where}.segmentations[{t}]", "expected an RLE {counts, size} or null")
            if list(seg["size"]) != size:
                raise DataFormatError(
                    self.json_path,
                    f"{where}.segmentations[{t}].size",
                    f"expected {size} (height, width of video {video['id']}), got {list(seg['size'])}",
                )

    def check_files(self, unlisted: bool = False) -> int:
        """Check that every frame the JSON lists is a file under :attr:`frames_dir`; return their count.

        ``unlisted``: also refuse image files in a listed video's folder that its ``file_names`` do
        not name (stale frames of an earlier dataset written to the same place). Raises
        :class:`DataFormatError` naming the JSON field (missing) or the folder (unlisted).
        """
        listing: dict[Path, set[str]] = {}
        total = 0
        for video in self._videos:
            listed: dict[Path, set[str]] = {}
            for t, name in enumerate(video["file_names"]):
                path = self.frames_dir / name
                if path.parent not in listing:
                    listing[path.parent] = set(os.listdir(path.parent)) if path.parent.is_dir() else set()
                if path.name not in listing[path.parent]:
                    raise DataFormatError(
                        self.json_path, f"videos[{video['_pos']}].file_names[{t}]", f"{path} is listed but not on disk"
                    )
                listed.setdefault(path.parent, set()).add(path.name)
                total += 1
            if unlisted:
                for folder, names in listed.items():
                    extra = sorted(n for n in listing[folder] - names if Path(n).suffix.lower() in IMAGE_SUFFIXES)
                    if extra:
                        raise DataFormatError(
                            folder, f"videos[{video['_pos']}].file_names",
                            f"{len(extra)} image file(s) on disk that the JSON does not list (e.g. {extra[0]}); "
                            "left from an earlier dataset? rewrite the folder (tagvis synth --overwrite)",
                        )
        return total

    def __len__(self) -> int:
        return len(self._videos)

    def __getitem__(self, i: int) -> VideoSample:
        return self.load(i)

    @property
    def video_ids(self) -> list[int]:
        return [v["id"] for v in self._videos]

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def class_index(self, category_id: int) -> int:
        """Model channel (1..C) of a dataset category id."""
        return self._class_of[category_id]

    def category_id(self, class_index: int) -> int:
        """Dataset category id of a model channel (1..C)."""
        if not 1 <= class_index <= len(self.categories):
            raise KeyError(f"class index {class_index} outside 1..{len(self.categories)}")
        return self.categories[class_index - 1]["id"]

    def num_frames(self, i: int) -> int:
        return self._videos[i]["length"]

    def load(self, i: int, frame_indices: Sequence[int] | np.ndarray | None = None) -> VideoSample:
        """Decode video ``i``; only the frames ``frame_indices`` (any order, repeats allowed) if given.

        Returns a sample with ``T = len(frame_indices)`` (all frames by default), masks ``(N, T, H, W)``
        of the video's N annotations in file order; a null segmentation gives an empty mask with
        ``present`` False.
        """
        video = self._videos[i]
        length, size = video["length"], (video["height"], video["width"])
        sel = np.arange(length) if frame_indices is None else np.asarray(frame_indices, dtype=np.int64)
        if sel.size and (sel.min() < 0 or sel.max() >= length):
            raise IndexError(f"frame index outside 0..{length - 1} for video {video['id']}")
        unique, inverse = np.unique(sel, return_inverse=True)
        decoded = [
            read_image(self.frames_dir / video["file_names"][t], f"videos[{video['_pos']}].file_names[{t}]", size)
            for t in unique
        ]
        frames = np.stack(decoded)[inverse] if decoded else np.zeros((0, *size, 3), np.uint8)
        anns = [ann for _, ann in self._annotations[i]]
        masks = np.zeros((len(anns), len(unique), *size), dtype=bool)
        for n, (k, ann) in enumerate(self._annotations[i]):
            rows = [j for j, t in enumerate(unique) if ann["segmentations"][t] is not None]
            segs = [ann["segmentations"][unique[j]] for j in rows]
            masks[n, rows] = decode_rles(segs, size, self.json_path, f"annotations[{k}].segmentations")
        present = np.array([[ann["segmentations"][t] is not None for t in sel] for ann in anns], dtype=bool)
        return VideoSample(
            video_id=video["id"],
            frames=frames,
            masks=masks[:, inverse],
            categories=np.array([a["category_id"] for a in anns], dtype=np.int64),
            present=present.reshape(len(anns), len(sel)),
            frame_names=[video["file_names"][t] for t in sel],
            void=None,
            iscrowd=np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
            instance_ids=np.array([a.get("id", n + 1) for n, a in enumerate(anns)], dtype=np.int64),
            meta={"length": length, "height": size[0], "width": size[1], "frame_indices": sel},
        )


def decode_rles(segs: list[dict], size: tuple[int, int], path: str | os.PathLike, field: str) -> np.ndarray:
    """Decode RLEs (counts a list of ints: uncompressed, or a string: compressed) to bool ``(n, H, W)``."""
    height, width = size
    rles = []
    try:
        for seg in segs:
            counts = seg["counts"]
            if isinstance(counts, list):
                if sum(counts) != height * width:
                    raise ValueError(f"uncompressed counts sum to {sum(counts)}, expected {height * width}")
                rles.append(mask_utils.frPyObjects(seg, height, width))
            else:
                rles.append({"size": [height, width], "counts": counts.encode() if isinstance(counts, str) else counts})
        decoded = mask_utils.decode(rles) if rles else np.zeros((height, width, 0), dtype=np.uint8)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataFormatError(path, field, f"undecodable RLE ({exc})") from None
    return decoded.transpose(2, 0, 1).astype(bool)


def encode_rle(mask: np.ndarray, compressed: bool = True) -> dict:
    """RLE of a bool ``(H, W)`` mask as in YouTube-VIS JSON: ``{"size": [H, W], "counts": ...}``.

    ``compressed``: counts as pycocotools' compressed string; otherwise the uncompressed list of run
    lengths (column-major, starting with a run of zeros) that the published train.json uses.
    """
    height, width = mask.shape
    if compressed:
        rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    flat = mask.ravel(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"size": [height, width], "counts": counts}


def load_ytvis_json(path: Path) -> dict:
    """The top-level object of a YouTube-VIS JSON file; a missing or malformed file raises."""
    if not path.is_file():
        raise DataFormatError(path, "split", "annotation file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, "json", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, "json", "expected a JSON object at the top level")
    return data


def _parse_categories(path: Path, data: dict) -> list[dict]:
    cats = data.get("categories")
    if not isinstance(cats, list):
        raise DataFormatError(path, "categories", "expected a list of categories")
    out = []
    for k, c in enumerate(cats):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int):
            raise DataFormatError(path, f"categories[{k}].id", "expected an integer id")
        out.append({"id": c["id"], "name": c.get("name", str(c["id"])), "supercategory": c.get("supercategory", "")})
    return sorted(out, key=lambda c: c["id"])


def _parse_videos(path: Path, data: dict) -> list[dict]:
    videos = data.get("videos")
    if not isinstance(videos, list):
        raise DataFormatError(path, "videos", "expected a list of videos (the key is missing or not a list)")
    out = []
    for k, v in enumerate(videos):
        where = f"videos[{k}]"
        if not isinstance(v, dict):
            raise DataFormatError(path, where, "expected an object")
        for key in ("id", "width", "height", "file_names"):
            if key not in v:
                raise DataFormatError(path, f"{where}.{key}", "missing")
        names = v["file_names"]
        if not isinstance(names, list) or not names:
            raise DataFormatError(path, f"{where}.file_names", "expected a non-empty list of frame files")
        if v.get("length", len(names)) != len(names):
            raise DataFormatError(path, f"{where}.length", f"is {v['length']} but file_names lists {len(names)} frames")
        out.append(
            {"id": v["id"], "width": int(v["width"]), "height": int(v["height"]),
             "length": len(names), "file_names": names, "_pos": k}
        )
    return out
