"""Reading and checking YouTube-VIS ground truth and results for the evaluation.

Ground truth follows the ``train.json`` schema (``videos``, ``categories``, ``annotations`` with one
``segmentations`` / ``areas`` entry per frame, null where the object is absent); results are a list
of ``{video_id, category_id, score, segmentations}``. Segmentations may be compressed RLE (string
counts), uncompressed RLE (list counts) or polygons; all come back as compressed RLE dicts that
``pycocotools.mask`` reads directly. The run lengths of compressed counts are trusted, as the
official code trusts them (only their declared ``size`` is checked).
"""
from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np
from pycocotools import mask as mask_utils

from ..errors import DataFormatError, DataWarning
from .rle_check import rle_string_totals

#: A ground-truth JSON as a path or as the loaded dict; results as a path or the loaded list.
GroundTruthSource = Union[str, os.PathLike, dict]
ResultsSource = Union[str, os.PathLike, list]


@dataclass
class Video:
    """One video of the ground truth: size and number of frames."""

    id: int
    height: int
    width: int
    length: int


@dataclass
class Track:
    """One ground-truth or detected track of a file.

    ``rles``: per frame a compressed RLE dict or None where absent, frame f declared with size
    (h, w + f) (see ``ytvis._pair_iou``); ``frame_area`` (T,) float64
    the areas of its masks (0 where absent); ``avg_area`` the official track area.
    ``where`` names the entry in error messages.
    """

    where: str
    id: int
    video_id: int
    category_id: int
    rles: list[dict | None]
    score: float = 0.0
    iscrowd: bool = False
    avg_area: float = 0.0
    frame_area: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class GroundTruth:
    """Parsed ground truth: videos by id, sorted category ids, tracks in file order.

    Its tracks are not finished (see ``finish_tracks``): only those that meet detections need it.
    """

    path: str
    videos: dict[int, Video]
    category_ids: list[int]
    tracks: list[Track]


def _load(source: Any, what: str) -> tuple[Any, str]:
    """A JSON file (or, for results, the single .json inside a server zip such as predict writes)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            raise DataFormatError(path, None, f"is a directory; expected the {what} JSON file")
        try:
            if zipfile.is_zipfile(path):
                return _load_zip(path, what)
            with open(path, encoding="utf-8") as fh:
                return json.load(fh), path
        except FileNotFoundError:
            raise DataFormatError(path, None, "file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFormatError(path, None, f"not valid JSON ({exc})") from None
    return source, f"<{what}>"


def _load_zip(path: str, what: str) -> tuple[Any, str]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".json") and not n.endswith("/")]
        if len(names) != 1:
            raise DataFormatError(path, None, f"a zip must hold exactly one .json {what} file, it holds {names}")
        inner = f"{path}:{names[0]}"
        try:
            return json.loads(archive.read(names[0]).decode("utf-8")), inner
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFormatError(inner, None, f"not valid JSON ({exc})") from None


def _int(value: Any, path: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataFormatError(path, where, f"expected an integer, got {value!r}")
    return int(value)


def _field(entry: Any, key: str, path: str, where: str) -> Any:
    if not isinstance(entry, dict):
        raise DataFormatError(path, where or None,
                              f"expected an object, got {type(entry).__name__}")
    if key not in entry:
        raise DataFormatError(path, f"{where}.{key}" if where else key, "missing")
    return entry[key]


def parse_frames(segs: Any, video: Video, path: str, where: str) -> list[dict | None]:
    """Check per-frame segmentations; return per frame a frame-keyed RLE dict or None.

    Frame f comes back as ``{"size": [h, w + f], "counts": ...}`` (see ``ytvis._pair_iou`` for
    why). Compressed counts keep their string; uncompressed (list) counts stay lists until
    ``finish_tracks`` compresses them; polygons are merged into one compressed RLE. As in the
    official code any falsy entry (null, empty list) means absent.
    """
    if not isinstance(segs, list):
        raise DataFormatError(path, where, "expected a list with one entry per frame")
    if len(segs) != video.length:
        raise DataFormatError(path, where, f"expected {video.length} entries (frames of video "
                                           f"{video.id}), got {len(segs)}")
    h, w = size = [video.height, video.width]
    out: list[dict | None] = []
    for f, seg in enumerate(segs):
        if not seg:
            out.append(None)
            continue
        if isinstance(seg, dict) and "counts" in seg and "size" in seg:
            if seg["size"] != size and list(seg["size"]) != size:
                raise DataFormatError(path, f"{where}[{f}].size",
                                      f"expected {size} (video {video.id}), got {seg['size']}")
            counts = seg["counts"]
            if not isinstance(counts, (str, bytes, list)):
                raise DataFormatError(path, f"{where}[{f}].counts", "expected a string or a list")
        elif isinstance(seg, list):  # polygons: one mask from all parts
            if not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                       and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p) for p in seg):
                raise DataFormatError(path, f"{where}[{f}]", "expected an RLE {size, counts}, null, or polygons: "
                                                             "lists of at least 3 x, y pairs")
            try:
                counts = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))["counts"]
            except Exception as exc:  # pycocotools raises bare Exception for unsupported input
                raise DataFormatError(path, f"{where}[{f}]", f"bad polygon ({exc})") from None
        else:
            raise DataFormatError(path, f"{where}[{f}]", "expected an RLE {size, counts} or null")
        out.append({"size": [h, w + f], "counts": counts})
    return out


def finish_tracks(tracks: Sequence[Track], path: str, area_from_masks: bool) -> None:
    """Compress uncompressed RLEs and measure every mask of ``tracks`` (in place).

    Sets ``frame_area`` and, with area_from_masks (detections), ``avg_area``: the mean of the
    non-zero frame areas, 0 when none (ground truth keeps the one from its ``areas`` field).
    """
    items = [(t, f) for t in tracks for f, r in enumerate(t.rles)
             if r is not None and isinstance(r["counts"], list)]
    if items:
        segs = [t.rles[f] for t, f in items]
        pixels = np.array([sum(s["counts"]) for s in segs])
        expected = np.array([s["size"][0] * (s["size"][1] - f) for s, (_, f) in zip(segs, items)])
        if (pixels != expected).any():
            k = int(np.argmax(pixels != expected))
            raise DataFormatError(path, f"{items[k][0].where}.segmentations[{items[k][1]}].counts",
                                  f"run lengths sum to {pixels[k]}, expected {expected[k]}")
        try:  # frPyObjects takes each size from its dict
            rles = mask_utils.frPyObjects(segs, 1, 1)
        except (TypeError, ValueError, OverflowError):
            raise DataFormatError(path, f"{items[0][0].where}.segmentations",
                                  "uncompressed counts must be non-negative integers") from None
        for (t, f), rle in zip(items, rles):
            t.rles[f] = rle
    strings = [(t, f) for t in tracks for f, r in enumerate(t.rles)
               if r is not None and isinstance(r["counts"], (str, bytes))]
    if strings:
        segs = [t.rles[f] for t, f in strings]
        totals, ok = rle_string_totals([s["counts"] for s in segs])
        expected = np.array([s["size"][0] * (s["size"][1] - f) for s, (_, f) in zip(segs, strings)])
        bad = ~ok | (totals != expected)
        if bad.any():
            k = int(np.argmax(bad))
            why = (f"run lengths sum to {totals[k]}, expected {expected[k]} (height x width)" if ok[k] else
                   "not a COCO compressed RLE string (characters '0'..'o', each run complete, no negative run)")
            raise DataFormatError(path, f"{strings[k][0].where}.segmentations[{strings[k][1]}].counts", why)
    present = [r for t in tracks for r in t.rles if r is not None]
    # chunks of 255: mask.area of pycocotools 2.0.11 fails on longer lists (uint8 overflow)
    areas = np.concatenate([np.zeros(0)] + [mask_utils.area(present[i:i + 255])
                                            for i in range(0, len(present), 255)])
    start = 0
    for t in tracks:
        frames = [f for f, r in enumerate(t.rles) if r is not None]
        t.frame_area = np.zeros(len(t.rles))
        t.frame_area[frames] = areas[start:start + len(frames)]
        start += len(frames)
        if area_from_masks:
            nonzero = t.frame_area[t.frame_area > 0]
            t.avg_area = float(nonzero.mean()) if nonzero.size else 0.0


def load_ground_truth(source: GroundTruthSource) -> GroundTruth:
    """Read a YouTube-VIS ground-truth JSON (path or dict); raises DataFormatError on bad input."""
    data, path = _load(source, "ground truth")
    if not isinstance(data, dict):
        raise DataFormatError(path, None, "expected an object with videos, categories, annotations")
    videos: dict[int, Video] = {}
    for i, v in enumerate(_field(data, "videos", path, "")):
        where = f"videos[{i}]"
        vid = _int(_field(v, "id", path, where), path, f"{where}.id")
        length = v.get("length")
        if length is None:
            length = len(_field(v, "file_names", path, where))
        video = Video(vid, _int(_field(v, "height", path, where), path, f"{where}.height"),
                      _int(_field(v, "width", path, where), path, f"{where}.width"),
                      _int(length, path, f"{where}.length"))
        if min(video.height, video.width, video.length) <= 0:
            raise DataFormatError(path, where, "height, width and length must be positive")
        videos[vid] = video
    cats = sorted(_int(_field(c, "id", path, f"categories[{i}]"), path, f"categories[{i}].id")
                  for i, c in enumerate(_field(data, "categories", path, "")))
    tracks: list[Track] = []
    seen_ids: set[int] = set()
    for i, ann in enumerate(_field(data, "annotations", path, "")):
        where = f"annotations[{i}]"
        vid = _int(_field(ann, "video_id", path, where), path, f"{where}.video_id")
        cat = _int(_field(ann, "category_id", path, where), path, f"{where}.category_id")
        ann_id = _int(_field(ann, "id", path, where), path, f"{where}.id")
        if ann_id in seen_ids:
            raise DataFormatError(path, f"{where}.id", f"duplicate annotation id {ann_id}")
        seen_ids.add(ann_id)
        if vid not in videos or cat not in cats:
            continue  # the official evaluation never looks at these
        video = videos[vid]
        frames = parse_frames(_field(ann, "segmentations", path, where), video, path,
                         f"{where}.segmentations")
        areas = _field(ann, "areas", path, where)
        if not isinstance(areas, list) or len(areas) != video.length:
            raise DataFormatError(path, f"{where}.areas",
                                  f"expected a list of {video.length} numbers or nulls")
        kept = [a for a in areas if a]  # official: neither null nor zero
        if any(isinstance(a, bool) or not isinstance(a, (int, float)) for a in kept):
            raise DataFormatError(path, f"{where}.areas", "expected numbers or nulls")
        tracks.append(Track(where, ann_id, vid, cat, frames, iscrowd=bool(ann.get("iscrowd", 0)),
                            avg_area=float(np.array(kept).mean()) if kept else 0.0))
    return GroundTruth(path, videos, cats, tracks)


def load_results(source: ResultsSource, gt: GroundTruth) -> list[Track]:
    """Read YouTube-VIS results (path or list) against ``gt``; raises DataFormatError on bad input.

    Detection ids are 1 + the position in the file, as the official loader assigns them.
    Detections of categories that the ground truth does not list are left out.
    """
    data, path = _load(source, "results")
    if not isinstance(data, list):
        raise DataFormatError(path, None, "expected a list of {video_id, category_id, score, "
                                          "segmentations}")
    cats = set(gt.category_ids)
    tracks: list[Track] = []
    unknown: list[tuple[str, int]] = []
    for i, det in enumerate(data):
        where = f"[{i}]"
        vid = _int(_field(det, "video_id", path, where), path, f"{where}.video_id")
        if vid not in gt.videos:
            raise DataFormatError(path, f"{where}.video_id", f"unknown video id {vid}")
        cat = _int(_field(det, "category_id", path, where), path, f"{where}.category_id")
        score = _field(det, "score", path, where)
        if (isinstance(score, bool) or not isinstance(score, (int, float))
                or not math.isfinite(score)):
            raise DataFormatError(path, f"{where}.score",
                                  f"expected a finite number, got {score!r}")
        frames = parse_frames(_field(det, "segmentations", path, where), gt.videos[vid], path,
                         f"{where}.segmentations")
        if cat in cats:
            tracks.append(Track(where, i + 1, vid, cat, frames, score=float(score)))
        else:
            unknown.append((where, cat))
    if unknown:
        warnings.warn(f"{path}: {len(unknown)} result(s) of categories the ground truth does not list were left out, "
                      f"as the official evaluation does (e.g. {unknown[0][0]}.category_id {unknown[0][1]})",
                      DataWarning, stacklevel=3)
    finish_tracks(tracks, path, area_from_masks=True)
    return tracks
