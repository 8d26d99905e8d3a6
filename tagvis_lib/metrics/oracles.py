"""Oracle bounds of a YouTube-VIS result: how much AP each part of the pipeline leaves on the table.

``oracle_bounds(gt_json, results_json)`` scores four versions of the same results with
:func:`~tagvis_lib.metrics.evaluate_ytvis`, each fixing one part with the ground truth:

- ``predicted``: the results as they are;
- ``class_oracle``: every predicted track takes the category of the ground-truth track of its video
  it overlaps best (track IoU, as the evaluation computes it); tracks that overlap none keep theirs.
  The gain is what classification costs.
- ``linking_oracle``: the predicted tracks whose best ground-truth track (highest track IoU, above 0)
  is the same are joined into one track: their masks' union in every frame, the category of the
  member with the most pixels and the highest score among them. Tracks that overlap no ground truth
  stay as they are. Pieces of one instance (cut in time by linking, or left apart in a frame) are
  joined; a prediction that merges two instances stays merged, and every frame's pixels stay where
  the grouping put them. The gain is what fragmentation costs.
- ``grouping_oracle``: the predicted foreground (union of the video's predicted masks scoring at
  least ``score_threshold``) is cut along the ground-truth tracks: each ground-truth track becomes
  one predicted track, its mask AND that foreground in every frame, with the category and score of
  the prediction that covers most of it. Foreground and class stay the network's; only how pixels
  are grouped into instances over the video (tags, grouping and linking) is perfect. The gap to
  ``predicted`` is what grouping costs.
"""
from __future__ import annotations

import os

import numpy as np

from ..data.ytvis import encode_rle
from .diagnostics import _track
from .ytvis import evaluate_ytvis
from .ytvis_io import _load, load_ground_truth, load_results

ORACLES = ("predicted", "class_oracle", "linking_oracle", "grouping_oracle")


def _encode(masks: np.ndarray) -> list[dict | None]:
    """(T, H, W) bool -> per-frame compressed RLE (None where empty)."""
    return [encode_rle(frame) if frame.any() else None for frame in masks]


def oracle_results(gt_json: str | os.PathLike | dict, results_json: str | os.PathLike | list,
                   score_threshold: float = 0.0) -> dict[str, list[dict]]:
    """The four result lists of the module docstring, keyed by :data:`ORACLES`.

    Inputs are checked as :func:`~tagvis_lib.metrics.evaluate_ytvis` checks them (a
    :class:`~tagvis_lib.errors.DataFormatError` names the file and entry).
    """
    gt, gt_name = _load(gt_json, "ground truth")
    results, res_name = _load(results_json, "results")
    load_results(results, load_ground_truth(gt))
    anns: dict[int, list] = {}
    for a in gt["annotations"]:
        anns.setdefault(a["video_id"], []).append(a)
    by_video: dict[int, list] = {}
    for i, r in enumerate(results):
        by_video.setdefault(r["video_id"], []).append((i, r))
    class_oracle, linking, grouping = [], [], []
    for video in gt["videos"]:
        vid = video["id"]
        shape = (video["length"], video["height"], video["width"])
        gts = [_track(a["segmentations"], *shape, f"{gt_name}: annotation id {a['id']}") for a in anns.get(vid, [])]
        preds = [(r, _track(r["segmentations"], *shape, f"{res_name}: [{i}]")) for i, r in by_video.get(vid, [])]
        inter = np.array([[(p & g).sum() for g in gts] for _, p in preds], dtype=np.float64).reshape(len(preds), len(gts))
        union = np.array([p.sum() for _, p in preds], dtype=np.float64)[:, None] + [g.sum() for g in gts] - inter
        iou = inter / np.maximum(union, 1.0)
        for j, (r, _) in enumerate(preds):
            new = dict(r)
            if gts and iou[j].max() > 0:
                new["category_id"] = anns[vid][int(iou[j].argmax())]["category_id"]
            class_oracle.append(new)
        linking += _joined_by_track(vid, preds, iou)
        kept = [j for j, (r, _) in enumerate(preds) if r["score"] >= score_threshold]
        if not kept:
            continue
        foreground = np.any([preds[j][1] for j in kept], axis=0)
        for i, g in enumerate(gts):
            mask = g & foreground
            if not mask.any():
                continue
            # the prediction covering most of the track; among equal covers the higher score
            r = preds[max(kept, key=lambda j: (inter[j, i], preds[j][0]["score"]))][0]
            grouping.append({"video_id": vid, "category_id": r["category_id"], "score": r["score"],
                             "segmentations": _encode(mask)})
    return {"predicted": list(results), "class_oracle": class_oracle, "linking_oracle": linking,
            "grouping_oracle": grouping}


def _joined_by_track(vid: int, preds: list[tuple[dict, np.ndarray]], iou: np.ndarray) -> list[dict]:
    """The linking oracle's tracks of one video, in the order of their first member: ``preds``
    (result, (T, H, W) bool) joined by their best ground-truth track (columns of ``iou`` (P, G));
    unmatched ones unchanged."""
    groups: dict[int, list[int]] = {}
    for j in range(len(preds)):
        key = int(iou[j].argmax()) if iou.shape[1] and iou[j].max() > 0 else -1 - j
        groups.setdefault(key, []).append(j)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(dict(preds[group[0]][0]))
            continue
        largest = max(group, key=lambda j: preds[j][1].sum())
        out.append({"video_id": vid, "category_id": preds[largest][0]["category_id"],
                    "score": max(preds[j][0]["score"] for j in group),
                    "segmentations": _encode(np.any([preds[j][1] for j in group], axis=0))})
    return out


def oracle_bounds(gt_json: str | os.PathLike | dict, results_json: str | os.PathLike | list,
                  score_threshold: float = 0.0) -> dict[str, dict[str, float]]:
    """AP, AP50, AP75, AR1, AR10 ... (:func:`evaluate_ytvis`) of each result list of :func:`oracle_results`."""
    gt, _ = _load(gt_json, "ground truth")
    return {name: evaluate_ytvis(gt, res) for name, res in oracle_results(gt, results_json, score_threshold).items()}
