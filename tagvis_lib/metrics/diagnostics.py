"""What limits a YouTube-VIS result: per-instance IoU, class confusion, foreground IoU, error kinds.

``diagnose_ytvis(gt_json, results_json)`` compares every ground-truth track of a split with the
predicted tracks of its video (class-agnostic first: predictions that share one mask, such as the
top-k categories of one instance, count once, with the category of their best score):

- ``best_iou``: per ground-truth track, the highest track IoU (as the official evaluation computes
  it: intersection and union summed over the video's frames) with any predicted mask;
- ``foreground_iou``: IoU of the union of all ground-truth masks with the union of all predicted
  masks that score at least ``score_threshold``, pixels summed over the split;
- ``confusion``: ``(C, C + 1)`` counts; row = ground-truth category, column = category of the best
  scored prediction of the mask that matches it (IoU >= ``iou_threshold``), last column = no match;
- ``errors``: every unmatched ground-truth track in exactly one kind, judged on the predictions
  that score at least ``score_threshold``, with ``cover(p, g) = |p and g| / |g|``:

  - ``merged``: one prediction covers >= 50% of it and >= 50% of another track of the video;
  - ``split``: no single prediction covers 50% of it, but at least two cover >= 20% each and
    together >= 50%;
  - ``missed``: all predictions together cover < 50% of it;
  - ``poor_mask``: the rest (covered, but the best IoU stays below the threshold).

  ``false_positives`` counts predicted masks (score >= ``score_threshold``) that match no
  ground-truth track.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import pycocotools.mask as mask_utils

from ..errors import TagvisError
from .ytvis_io import _load, load_ground_truth, load_results

ERROR_KINDS = ("merged", "split", "missed", "poor_mask")


@dataclass
class Diagnosis:
    """Result of :func:`diagnose_ytvis` (see the module docstring for each field)."""

    category_ids: list[int]
    best_iou: np.ndarray  #: (G,) per ground-truth track, file order
    gt_categories: np.ndarray  #: (G,)
    foreground_iou: float
    confusion: np.ndarray  #: (C, C + 1) int
    errors: dict[str, int] = field(default_factory=dict)
    false_positives: int = 0
    matched: int = 0

    def summary(self) -> dict[str, float]:
        """Flat figures for a table: tracks, matched share, mean best IoU, class accuracy, error counts."""
        on_diag = np.trace(self.confusion[:, :-1])
        return {
            "tracks": int(len(self.best_iou)),
            "matched (IoU>=0.5)": round(self.matched / max(len(self.best_iou), 1), 3),
            "mean best IoU": round(float(self.best_iou.mean()) if len(self.best_iou) else 0.0, 3),
            "class accuracy of matched": round(float(on_diag / max(self.matched, 1)), 3),
            "foreground IoU": round(self.foreground_iou, 3),
            **{k: int(v) for k, v in self.errors.items()},
            "false positives": int(self.false_positives),
        }


def _decode(seg: dict | None, height: int, width: int) -> np.ndarray | None:
    if seg is None:
        return None
    rle = mask_utils.frPyObjects(seg, height, width) if isinstance(seg.get("counts"), list) else seg
    return mask_utils.decode(rle).astype(bool)


def _track(segs: list, length: int, height: int, width: int, where: str) -> np.ndarray:
    if not isinstance(segs, list) or len(segs) != length:
        raise TagvisError(f"{where}: segmentations must be a list of {length} entries (one per frame)")
    out = np.zeros((length, height, width), dtype=bool)
    for t, seg in enumerate(segs):
        mask = _decode(seg, height, width)
        if mask is not None:
            if mask.shape != (height, width):
                raise TagvisError(f"{where}: segmentations[{t}] has size {mask.shape}, the video {(height, width)}")
            out[t] = mask
    return out


def diagnose_ytvis(gt_json: str | os.PathLike | dict, results_json: str | os.PathLike | list,
                   iou_threshold: float = 0.5, score_threshold: float = 0.1) -> Diagnosis:
    """Diagnose ``results_json`` (list of {video_id, category_id, score, segmentations}) on ``gt_json``.

    Both are checked as :func:`~tagvis_lib.metrics.evaluate_ytvis` checks them (a
    :class:`DataFormatError` names the file and entry); results of categories the ground truth does
    not list are left out, with the same warning.
    """
    gt, gt_name = _load(gt_json, "ground truth")
    results, res_name = _load(results_json, "results")
    # the evaluation's checks first (fields, RLE totals, sizes): a bad entry is named, never decoded
    load_results(results, load_ground_truth(gt))
    videos = {v["id"]: v for v in gt["videos"]}
    category_ids = sorted(c["id"] for c in gt["categories"])
    column = {c: i for i, c in enumerate(category_ids)}
    by_video: dict[int, list] = {}
    for i, r in enumerate(results):
        if r["category_id"] in column:  # others are left out, as the evaluation leaves them out
            by_video.setdefault(r["video_id"], []).append((i, r))
    anns: dict[int, list] = {}
    for a in gt["annotations"]:
        anns.setdefault(a["video_id"], []).append(a)
    best, cats = [], []
    confusion = np.zeros((len(category_ids), len(category_ids) + 1), dtype=np.int64)
    errors = dict.fromkeys(ERROR_KINDS, 0)
    fg_inter = fg_union = 0
    false_positives = matched = 0
    for vid, video in videos.items():
        shape = (video["length"], video["height"], video["width"])
        gts = [_track(a["segmentations"], *shape, f"{gt_name}: annotation id {a['id']}") for a in anns.get(vid, [])]
        # one entry per distinct mask: (mask, best score, its category)
        masks: dict[str, list] = {}
        for i, r in by_video.get(vid, []):
            key = json.dumps(r["segmentations"], sort_keys=True)
            if key not in masks:
                masks[key] = [_track(r["segmentations"], *shape, f"{res_name}: [{i}]"), -np.inf, None]
            if r["score"] > masks[key][1]:
                masks[key][1:] = [float(r["score"]), int(r["category_id"])]
        preds = list(masks.values())
        kept = [p for p in preds if p[1] >= score_threshold]
        g_area = np.array([g.sum() for g in gts], dtype=np.float64)
        inter = np.array([[(p[0] & g).sum() for g in gts] for p in preds], dtype=np.float64).reshape(len(preds), len(gts))
        p_area = np.array([p[0].sum() for p in preds], dtype=np.float64)
        union = p_area[:, None] + g_area[None, :] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        keep = np.array([p[1] >= score_threshold for p in preds], dtype=bool)
        fg_gt = np.any(gts, axis=0) if gts else np.zeros(shape, bool)
        fg_pred = np.any([p[0] for p in kept], axis=0) if kept else np.zeros(shape, bool)
        fg_inter += int((fg_gt & fg_pred).sum())
        fg_union += int((fg_gt | fg_pred).sum())
        for j, a in enumerate(anns.get(vid, [])):
            row = column[a["category_id"]]
            cats.append(a["category_id"])
            b = float(iou[:, j].max()) if len(preds) else 0.0
            best.append(b)
            if b >= iou_threshold:
                matched += 1
                confusion[row, column[preds[int(iou[:, j].argmax())][2]]] += 1
                continue
            confusion[row, -1] += 1
            cover = inter[keep, j] / max(g_area[j], 1.0)
            others = np.delete(inter[keep] / np.maximum(g_area[None, :], 1.0), j, axis=1)
            if (cover >= 0.5).any() and (others[cover >= 0.5] >= 0.5).any():
                errors["merged"] += 1
            elif (cover >= 0.2).sum() >= 2 and cover[cover >= 0.2].sum() >= 0.5 and not (cover >= 0.5).any():
                errors["split"] += 1
            elif (fg_pred & gts[j]).sum() < 0.5 * g_area[j]:
                errors["missed"] += 1
            else:
                errors["poor_mask"] += 1
        if len(gts):
            false_positives += int((keep & (iou.max(axis=1) < iou_threshold)).sum())
        else:
            false_positives += int(keep.sum())
    return Diagnosis(category_ids, np.array(best), np.array(cats, dtype=np.int64),
                     fg_inter / fg_union if fg_union else 1.0, confusion, errors, false_positives, matched)
