"""DAVIS 2017 region (J) and boundary (F) measures, per frame and as the official evaluation.

The per-frame functions follow ``davis2017-evaluation`` (``davis2017/metrics.py``):

- J: |P and G minus void| / |P or G minus void|, 1 when the union is empty.
- F: masks multiplied by not-void; a boundary pixel differs from its right, bottom or bottom-right
  neighbour, comparing only neighbours inside the image (so the last row looks right only, the last
  column down only, the corner never: a mask touching the border has no boundary along it); 1 px
  wide, no thinning. Tolerance radius ceil(0.008 * image diagonal) px (or ``bound_th`` itself when
  >= 1) with the disk x^2 + y^2 <= r^2; precision = |Bp in dilated Bg| / |Bp|, recall = |Bg in
  dilated Bp| / |Bg|, F = 2PR / (P + R), 0 when P + R = 0; empty boundaries count as precision or
  recall 1 (both empty: F = 1; one empty: F = 0).

``evaluate_davis`` computes the whole unsupervised evaluation with the all-pairs versions of these
(``davis_pairs.py``); its docstring lists the behaviour of the official code that it reproduces.
"""
from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from ..errors import DataFormatError
from .assignment import max_score_assignment
from .davis_pairs import f_from_counts, pair_boundary, pair_iou

#: Boundary tolerance as a fraction of the image diagonal (official ``bound_th``).
BOUND_TH = 0.008


def db_eval_iou(annotation: np.ndarray, segmentation: np.ndarray,
                void: np.ndarray | None = None) -> np.ndarray:
    """Region similarity J of each frame.

    annotation, segmentation, void: bool (..., H, W); returns float64 (...), 1 where the union
    (outside void) is empty.
    """
    annotation, segmentation = annotation.astype(bool), segmentation.astype(bool)
    keep = np.ones_like(annotation) if void is None else ~void.astype(bool)
    inter = ((annotation & segmentation) & keep).sum(axis=(-2, -1))
    union = ((annotation | segmentation) & keep).sum(axis=(-2, -1))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Official 1-pixel boundary of a mask: (..., H, W) bool -> (..., H, W) bool.

    A pixel is on the boundary when it differs from its right, bottom or bottom-right neighbour,
    only neighbours inside the image counted.
    """
    mask = mask.astype(bool)
    out = np.zeros_like(mask)
    out[..., :, :-1] |= mask[..., :, :-1] != mask[..., :, 1:]
    out[..., :-1, :] |= mask[..., :-1, :] != mask[..., 1:, :]
    out[..., :-1, :-1] |= mask[..., :-1, :-1] != mask[..., 1:, 1:]
    return out


def boundary_radius(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Tolerance radius in pixels: bound_th itself when >= 1, else ceil(bound_th * diagonal)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * np.linalg.norm([height, width])))


def disk(radius: int) -> np.ndarray:
    """Disk structuring element (2r+1, 2r+1) bool: x^2 + y^2 <= r^2 (skimage's ``disk``)."""
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return x * x + y * y <= radius * radius


def f_measure(segmentation: np.ndarray, annotation: np.ndarray, void: np.ndarray | None = None,
              bound_th: float = BOUND_TH) -> float:
    """Boundary measure F of one frame: segmentation, annotation, void bool (H, W)."""
    from scipy import ndimage  # only this per-frame reference needs it, not evaluate_davis

    keep = np.ones(annotation.shape, bool) if void is None else ~void.astype(bool)
    fg = boundary_map(segmentation.astype(bool) & keep)
    gt = boundary_map(annotation.astype(bool) & keep)
    footprint = disk(boundary_radius(*annotation.shape, bound_th=bound_th))
    fg_dil = ndimage.binary_dilation(fg, structure=footprint)
    gt_dil = ndimage.binary_dilation(gt, structure=footprint)
    return f_from_counts(int(fg.sum()), int(gt.sum()), int((fg & gt_dil).sum()),
                         int((gt & fg_dil).sum()))


def db_eval_boundary(annotation: np.ndarray, segmentation: np.ndarray,
                     void: np.ndarray | None = None, bound_th: float = BOUND_TH) -> np.ndarray:
    """Boundary measure F of each frame: bool (..., H, W) inputs, float64 (...) output."""
    lead = annotation.shape[:-2]
    ann = annotation.reshape(-1, *annotation.shape[-2:])
    seg = segmentation.reshape(ann.shape)
    vd = None if void is None else np.broadcast_to(void, annotation.shape).reshape(ann.shape)
    out = [f_measure(seg[i], ann[i], None if vd is None else vd[i], bound_th)
           for i in range(ann.shape[0])]
    return np.array(out, np.float64).reshape(lead)


#: The official evaluation stops when a results PNG has a label above this.
MAX_PROPOSALS = 20
#: Keys of the global numbers, in the official table's order.
GLOBAL_KEYS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


def davis_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall and decay of one object's per-frame values (T,), as the official code.

    Recall: fraction of frames above 0.5 (strict). Decay: mean of the first quarter minus mean of
    the last, quarters from round(linspace(1, T, 5)) with shared end frames; the bin edges pass
    through uint8 as in the official code (so they wrap for sequences longer than 256 frames).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(values)
        recall = np.nanmean(values > 0.5)
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
        bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return float(mean), float(recall), float(decay)


def _read_labels(path: Path, what: str) -> np.ndarray:
    """A single-channel PNG (palette or grey) as (H, W) uint8 labels."""
    try:
        with Image.open(path) as img:
            fmt = img.format
            arr = np.asarray(img) if fmt == "PNG" else None
    except FileNotFoundError:
        raise DataFormatError(path, None, f"missing {what} PNG") from None
    except (OSError, ValueError) as exc:
        raise DataFormatError(path, None, f"not a readable PNG ({exc})") from None
    if arr is None:
        raise DataFormatError(path, "format", f"expected a PNG {what} file, the data is {fmt or 'unknown'}")
    if arr.ndim != 2:
        raise DataFormatError(path, "mode", f"expected a single-channel (palette or L) PNG, "
                                            f"got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.min() < 0 or arr.max() > 255:
            raise DataFormatError(path, "labels", "expected labels 0..255")
        arr = arr.astype(np.uint8)
    return arr


def _sequence_scores(ann_dir: Path, res_dir: Path, count_void: bool,
                     mapper: Callable[..., Iterable]) -> tuple[np.ndarray, np.ndarray]:
    """J and F (P', K, T) of every proposal (padded to K) against every object of one sequence.

    mapper: ``map`` or a thread pool's ``map`` for the per-frame work (decoding and scoring).
    """
    frames = sorted(p.name for p in ann_dir.glob("*.png"))
    if not frames:
        raise DataFormatError(ann_dir, None, "no annotation PNGs")
    if not res_dir.is_dir():
        raise DataFormatError(res_dir, None, "missing results folder of the sequence")
    gts = list(mapper(lambda f: _read_labels(ann_dir / f, "annotation"), frames))
    ress = list(mapper(lambda f: _read_labels(res_dir / f, "result"), frames))
    shape = gts[0].shape
    for f, g, r in zip(frames, gts, ress):
        for path, arr, like in ((ann_dir / f, g, "the first frame"),
                                (res_dir / f, r, "the annotation")):
            if arr.shape != shape:
                raise DataFormatError(path, "size", f"expected {shape[1]}x{shape[0]} like {like}, "
                                                    f"got {arr.shape[1]}x{arr.shape[0]}")
    first = gts[0]
    n_obj = int(first[first != 255].max(initial=0))  # K: objects of the FIRST frame, void aside
    n_res = int(max(r.max() for r in ress))
    if n_res > MAX_PROPOSALS:
        raise DataFormatError(res_dir, "proposals", f"labels go up to {n_res}; at most "
                                                    f"{MAX_PROPOSALS} proposals are allowed")
    n_prop = max(n_res, n_obj)  # proposals padded with empty ones to at least K
    radius = boundary_radius(*shape)

    def score(t: int) -> tuple[np.ndarray, np.ndarray]:
        gt, res = gts[t], ress[t]
        keep = None if count_void else gt != 255
        labels = gt.copy()
        labels[labels > n_obj] = 0  # void and ids first seen after frame 0: background
        return (pair_iou(labels, res, n_obj, n_prop, keep),
                pair_boundary(labels, res, n_obj, n_prop, radius, keep))

    scores = list(mapper(score, range(len(frames))))
    j = np.ascontiguousarray(np.stack([s[0] for s in scores], axis=-1))
    f = np.ascontiguousarray(np.stack([s[1] for s in scores], axis=-1))
    return j, f


def evaluate_davis(davis_root: str | os.PathLike, results_dir: str | os.PathLike,
                   split: str = "val", sequences: Sequence[str] | None = None, *,
                   count_void: bool = False, workers: int = 1) -> dict:
    """The official DAVIS 2017 unsupervised evaluation of palette PNG results.

    davis_root: DAVIS folder with ``Annotations_unsupervised/480p/<seq>/*.png`` and
    ``ImageSets/2017/<split>.txt``; results_dir: ``<seq>/<frame>.png`` with labels 0..P, P <= 20.
    Returns the official global keys (GLOBAL_KEYS) and ``per_sequence``: {seq: {"J": [...],
    "F": [...]}} with the mean J and F of each object, objects in id order.

    Reproduces the official code (``davis2017/evaluation.py``, ``davis.py``, ``utils.py``):

    - Frames are the annotation PNGs of the sequence, all of them (first and last included).
    - K is the largest label of the FIRST annotation frame once void (255) is set to 0; later
      labels above K are background. Void pixels are left out of J and F: ``DAVIS.get_all_masks``
      records the void mask (label 255) of every frame before it sets 255 to 0, and
      ``DAVISEvaluation.evaluate`` hands that mask to ``db_eval_iou`` and ``db_eval_boundary``.
      ``count_void=True`` instead counts void pixels as background (not the official numbers).
    - P is the largest label of all result frames; P > 20 is refused. Proposals are padded with
      empty ones to at least K. For every proposal and object, J and F on every frame; the pair
      score (mean J + mean F) / 2; ``scipy.optimize.linear_sum_assignment`` maximises the total
      (skipped when the best assignment is clear, see ``assignment.py``: same answer).
    - Per object: mean, recall (> 0.5) and decay (``davis_statistics``); global numbers are means
      over all objects of all sequences, pooled in the official order (per sequence, objects in
      the order of their assigned proposal), and J&F-Mean = (J-Mean + F-Mean) / 2. The official
      per-object table labels them ``<seq>_<i>`` in that order too, which need not be the object
      ids; ``per_sequence`` here lists them by object id.

    Malformed input raises DataFormatError naming the file: a missing sequence folder or frame,
    a PNG of another size or with more than one channel, more than 20 proposals.
    """
    root, res_root = Path(davis_root), Path(results_dir)
    if sequences is None:
        listing = root / "ImageSets" / "2017" / f"{split}.txt"
        if not listing.is_file():
            raise DataFormatError(listing, None, "missing sequence list")
        sequences = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    pooled: dict[str, list[float]] = {k: [] for k in ("JM", "JR", "JD", "FM", "FR", "FD")}
    per_sequence: dict[str, dict[str, list[float]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        mapper = pool.map if workers > 1 else map
        for seq in sequences:
            j, f = _sequence_scores(root / "Annotations_unsupervised" / "480p" / seq,
                                    res_root / seq, count_void, mapper)
            n_obj = j.shape[1]
            per_sequence[seq] = {"J": [0.0] * n_obj, "F": [0.0] * n_obj}
            if n_obj == 0:
                continue
            rows, cols = max_score_assignment((np.mean(j, axis=2) + np.mean(f, axis=2)) / 2)
            for row, col in zip(rows, cols):
                for name, values in (("J", j[row, col]), ("F", f[row, col])):
                    m, r, d = davis_statistics(values)
                    pooled[name + "M"].append(m)
                    pooled[name + "R"].append(r)
                    pooled[name + "D"].append(d)
                    per_sequence[seq][name][col] = m
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # no object at all: NaN
        means = {k: float(np.mean(v)) for k, v in pooled.items()}
    out: dict = dict(zip(GLOBAL_KEYS, ((means["JM"] + means["FM"]) / 2, means["JM"], means["JR"],
                                       means["JD"], means["FM"], means["FR"], means["FD"])))
    out["per_sequence"] = per_sequence
    return out
