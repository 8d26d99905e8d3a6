"""YouTube-VIS evaluation: AP and AR over video tracks, the numbers of the official evaluation.

The official evaluation is ``ytvos.py`` / ``ytvoseval.py`` of the YouTube-VIS fork of the COCO API.
This module gives the same numbers, bit for bit, with track IoUs from few ``pycocotools.mask.iou``
calls per (video, category) (see ``_pair_iou``) and the greedy matching vectorised over IoU
thresholds, area ranges and (video, category) groups. Behaviour of the official code reproduced on
purpose:

- Track IoU: intersections and unions summed over frames, I / U, 0 when U = 0. A null frame adds
  its partner's area to U; an all-zero RLE counts as present but adds the same amounts, so the two
  give the same IoU. No crowd variant of the IoU.
- Track area: mean of the per-frame areas that are neither null nor zero (ground truth: its
  ``areas`` field, not its masks; detections: their RLE areas), 0 when none.
- Area ranges all [0, 1e10], small [0, 128^2], medium [128^2, 256^2], large [256^2, 1e10],
  inclusive at both ends: a track of area exactly 128^2 is both small and medium.
- Per (video, category) the detections are sorted by score with a stable sort (ties keep file
  order) and only the first 100 take part; maxDets 1 and 10 take prefixes of that order.
- Matching per IoU threshold: each detection in score order takes, among the ground truths not yet
  matched (crowd ones stay available), the one of highest IoU >= threshold, the LAST in file order
  on ties; ground truths that are crowd or outside the area range are taken only when no other one
  qualifies. An unmatched detection outside the area range is ignored.
- A detection matched to a ground truth with ``id`` 0 counts as unmatched (the official code keeps
  the matched id and tests it for non-zero).
- Accumulation per category: detections of all videos concatenated in ascending video id, stable
  sort by score, precision made monotone, sampled at recall thresholds 0:.01:1 (0 beyond the last
  recall reached); precision is tp / (tp + fp + eps), so one lone true positive scores 1 - 2e-16.
  Categories and area ranges without non-crowd ground truth in range get -1 and leave the means;
  a number with nothing defined is -1.
- Detections (and ground truths) whose category is not in the ground truth's ``categories`` are
  skipped silently; so are annotations of videos that are not listed.

Where the official code crashes or asserts, this module answers instead: an empty results list
gives 0 for every defined number, a missing ``iscrowd`` is 0, and malformed input (unknown video,
wrong frame count, RLE of another size, missing keys, duplicate ground-truth ids, uncompressed
counts that do not cover the frame) raises DataFormatError naming the entry. Compressed counts
strings are trusted, as pycocotools trusts them.
"""
from __future__ import annotations

import contextlib
import gc
from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from .ytvis_io import (GroundTruth, GroundTruthSource, ResultsSource, Track, Video, finish_tracks,
                       load_ground_truth, load_results, parse_frames)

#: IoU thresholds .50:.05:.95, built as the official code builds them (np.arange drifts).
IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
#: Recall thresholds 0:.01:1.
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
#: Most detections per (video, category) counted, in increasing order.
MAX_DETS = (1, 10, 100)
#: Track-area ranges, inclusive at both ends.
AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 128.0 ** 2),
               "medium": (128.0 ** 2, 256.0 ** 2), "large": (256.0 ** 2, 1e5 ** 2)}


def ytvis_track_iou(dets: Sequence[Sequence[dict | None]],
                    gts: Sequence[Sequence[dict | None]]) -> np.ndarray:
    """Track IoU of every detection with every ground truth of one video: (D, G) float64.

    A track is a per-frame list of RLE dicts (pycocotools, compressed or uncompressed), None where
    absent; all tracks have the same number of frames and masks of one size. IoU = sum over frames
    of |d and g| / sum over frames of |d or g| (an absent frame is an empty mask), 0 when the union
    is 0.
    """
    sizes = {tuple(r["size"]) for t in list(dets) + list(gts) for r in t if r}
    lengths = {len(t) for t in list(dets) + list(gts)}
    if len(sizes) > 1 or len(lengths) > 1:
        raise ValueError(f"tracks must share one mask size and frame count, got {sizes}, {lengths}")
    if not sizes or not len(dets) or not len(gts):
        return np.zeros((len(dets), len(gts)))
    (h, w), (length,) = sizes.pop(), lengths
    video = Video(0, h, w, length)
    tracks = [Track(f"[{i}]", i, 0, 0, parse_frames(list(t), video, "<tracks>", f"[{i}]"))
              for i, t in enumerate(list(dets) + list(gts))]
    finish_tracks(tracks, "<tracks>", area_from_masks=True)
    return _pair_iou(tracks[:len(dets)], tracks[len(dets):])


#: (detection mask, ground-truth mask) pairs per pycocotools call: enough to spread its fixed cost
#: (~30 us), few enough that cross-frame pairs (~60 ns each) stay cheap.
_PAIRS_PER_CALL = 2500


def _pair_iou(dets: Sequence[Track], gts: Sequence[Track]) -> np.ndarray:
    """Track IoUs (D, G) of finished tracks of one video, exactly the official I / U.

    Masks of frames where both sides have a non-empty mask go to ``mask.iou``, several frames per
    call: each mask is declared with size (h, w + frame) by ``parse_frames``, and pycocotools
    computes bounding boxes from the height alone, so masks of one frame are compared as usual
    while pairs from different frames have different sizes and are skipped (-1). A call takes as
    many frames as keeps it near _PAIRS_PER_CALL pairs. The integer intersection of each same-frame
    pair is recovered from its IoU and the two areas; I and U are summed over frames.
    """
    inter = np.zeros((len(dets), len(gts)))
    if not len(dets) or not len(gts):
        return inter
    d_area = np.array([d.frame_area for d in dets])  # (D, T)
    g_area = np.array([g.frame_area for g in gts])
    frames = np.flatnonzero((d_area > 0).any(0) & (g_area > 0).any(0))
    step = max(1, int(np.sqrt(_PAIRS_PER_CALL / (len(dets) * len(gts)))))
    for f0 in range(0, len(frames), step):
        run = frames[f0:f0 + step]
        di, df = np.nonzero(d_area[:, run] > 0)
        gj, gf = np.nonzero(g_area[:, run] > 0)
        df, gf = run[df], run[gf]
        iou = np.asarray(mask_utils.iou([dets[i].rles[f] for i, f in zip(di.tolist(), df.tolist())],
                                        [gts[j].rles[f] for j, f in zip(gj.tolist(), gf.tolist())],
                                        [0] * len(gj)), np.float64)
        a, b = np.nonzero((df[:, None] == gf[None, :]) & (iou > 0))
        both = d_area[di[a], df[a]] + g_area[gj[b], gf[b]]
        np.add.at(inter, (di[a], gj[b]), np.rint(iou[a, b] * both / (1.0 + iou[a, b])))
    union = d_area.sum(1)[:, None] + g_area.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class _Groups:
    """Per (video, category) with ground truth or detections: padded arrays for the matching.

    ious (N, D, G) with -1 padding; gt_ids (N, G); gt_crowd (N, G); gt_area (N, G); det_area and
    det_score (N, D); n_det, n_gt (N,); video_pos and cat (N,) the group's video position and
    category index. Detections of a group are sorted by score (stable) and cut to the first 100.
    """

    def __init__(self, gt: GroundTruth, det_tracks: list[Track]):
        video_ids, category_ids = sorted(gt.videos), gt.category_ids
        cat_index = {c: k for k, c in enumerate(category_ids)}
        gts_by: dict[tuple[int, int], list[Track]] = defaultdict(list)
        dts_by: dict[tuple[int, int], list[Track]] = defaultdict(list)
        for t in gt.tracks:
            gts_by[t.video_id, t.category_id].append(t)
        for t in det_tracks:
            dts_by[t.video_id, t.category_id].append(t)
        # only ground truth that meets detections needs its masks (compressed and measured)
        finish_tracks([g for key, g_list in gts_by.items() if key in dts_by for g in g_list],
                      gt.path, area_from_masks=False)
        groups = []  # (video position, category index, gts, kept dets sorted by score, ious)
        for v, vid in enumerate(video_ids):
            for cat in category_ids:
                g_list, d_list = gts_by.get((vid, cat), []), dts_by.get((vid, cat), [])
                if not g_list and not d_list:
                    continue
                order = np.argsort([-d.score for d in d_list], kind="mergesort")[:MAX_DETS[-1]]
                d_list = [d_list[i] for i in order]
                groups.append((v, cat_index[cat], g_list, d_list, _pair_iou(d_list, g_list)))
        n = len(groups)
        gmax = max([len(g[2]) for g in groups] + [1])
        dmax = max([len(g[3]) for g in groups] + [1])
        self.video_pos = np.array([g[0] for g in groups], np.int64)
        self.cat = np.array([g[1] for g in groups], np.int64)
        self.n_det = np.array([len(g[3]) for g in groups], np.int64)
        self.n_gt = np.array([len(g[2]) for g in groups], np.int64)
        self.ious = np.full((n, dmax, gmax), -1.0)
        self.gt_ids = np.zeros((n, gmax), np.int64)
        self.gt_crowd = np.zeros((n, gmax), bool)
        self.gt_area = np.zeros((n, gmax))
        self.det_area = np.zeros((n, dmax))
        self.det_score = np.zeros((n, dmax))
        for i, (_, _, g_list, d_list, sub) in enumerate(groups):
            self.ious[i, :len(d_list), :len(g_list)] = sub
            self.gt_ids[i, :len(g_list)] = [g.id for g in g_list]
            self.gt_crowd[i, :len(g_list)] = [g.iscrowd for g in g_list]
            self.gt_area[i, :len(g_list)] = [g.avg_area for g in g_list]
            self.det_area[i, :len(d_list)] = [d.avg_area for d in d_list]
            self.det_score[i, :len(d_list)] = [d.score for d in d_list]


def _out_of_range(area: np.ndarray) -> np.ndarray:
    """(A, *area.shape) bool: area outside each range of AREA_RANGES (inclusive bounds)."""
    return np.stack([(area < lo) | (area > hi) for lo, hi in AREA_RANGES.values()])


def _last_argmax(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the last maximum along the last axis, and the maximum."""
    last = values.shape[-1] - 1 - np.argmax(values[..., ::-1], axis=-1)
    return last, values.max(axis=-1)


def _match(groups: _Groups) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of every group at every (area range, IoU threshold) row at once.

    Returns tp, fp: (N, R, D) bool with rows R = A * T (area-major).
    """
    n, dmax, gmax = groups.ious.shape
    n_area, n_thr = len(AREA_RANGES), len(IOU_THRESHOLDS)
    thr = np.tile(IOU_THRESHOLDS, n_area)[None, :, None]  # (1, R, 1)
    valid_gt = np.arange(gmax)[None, :] < groups.n_gt[:, None]
    gt_ignore = groups.gt_crowd[None] | _out_of_range(groups.gt_area)  # (A, N, G)
    gt_ignore = np.repeat(gt_ignore.transpose(1, 0, 2), n_thr, axis=1)  # (N, R, G)
    available = np.repeat(valid_gt[:, None, :], n_area * n_thr, axis=1)
    match = np.full((n, n_area * n_thr, dmax), -1, np.int64)
    rows = np.arange(n_area * n_thr)
    for d in range(dmax):
        active = np.flatnonzero(groups.n_det > d)
        iou = groups.ious[active, d][:, None, :]  # (n, 1, G)
        ign = gt_ignore[active]
        score = np.where(available[active] & (iou >= thr), iou, -1.0)
        reg_idx, reg_best = _last_argmax(np.where(ign, -1.0, score))
        ign_idx, ign_best = _last_argmax(np.where(ign, score, -1.0))
        won = np.where(reg_best >= 0, reg_idx, np.where(ign_best >= 0, ign_idx, -1))
        match[active, :, d] = won
        hit_g, hit_r = np.nonzero(won >= 0)
        taken_g = active[hit_g]
        keep_crowd = groups.gt_crowd[taken_g, won[hit_g, hit_r]]
        used = ~keep_crowd
        available[taken_g[used], rows[hit_r[used]], won[hit_g, hit_r][used]] = False
    matched = match >= 0
    safe = np.where(matched, match, 0)
    gi = np.arange(n)[:, None, None]
    matched_id = np.where(matched, groups.gt_ids[gi, safe], 0)
    det_ignore = matched & gt_ignore[gi, np.arange(n_area * n_thr)[None, :, None], safe]
    det_out = np.repeat(_out_of_range(groups.det_area).transpose(1, 0, 2), n_thr, axis=1)
    det_ignore |= (matched_id == 0) & det_out
    real = (np.arange(dmax)[None, :] < groups.n_det[:, None])[:, None, :]
    tp = (matched_id != 0) & ~det_ignore & real
    fp = (matched_id == 0) & ~det_ignore & real
    return tp, fp


def _accumulate(groups: _Groups, tp: np.ndarray, fp: np.ndarray, n_cat: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """COCO accumulation: precision (T, R, K, A, M) and recall (T, K, A, M), -1 where undefined."""
    n_thr, n_rec, n_area = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(AREA_RANGES)
    precision = -np.ones((n_thr, n_rec, n_cat, n_area, len(MAX_DETS)))
    recall = -np.ones((n_thr, n_cat, n_area, len(MAX_DETS)))
    gt_ok = (np.arange(groups.gt_ids.shape[1])[None, :] < groups.n_gt[:, None])
    not_ignored = gt_ok[None] & ~(groups.gt_crowd[None] | _out_of_range(groups.gt_area))  # (A,N,G)
    npig = np.zeros((n_area, n_cat), np.int64)
    np.add.at(npig, (slice(None), groups.cat), not_ignored.sum(-1))
    g_idx, d_idx = np.nonzero(np.arange(tp.shape[2])[None, :] < groups.n_det[:, None])
    det_cat, det_rank = groups.cat[g_idx], d_idx
    det_vid, det_score = groups.video_pos[g_idx], groups.det_score[g_idx, d_idx]
    det_tp, det_fp = tp[g_idx, :, d_idx], fp[g_idx, :, d_idx]  # (Nd, R)
    for k in np.unique(groups.cat):
        sel = np.flatnonzero(det_cat == k)
        # stable sort by score of the concatenation in (video, rank) order
        sel = sel[np.lexsort((det_rank[sel], det_vid[sel], -det_score[sel]))]
        for m, max_det in enumerate(MAX_DETS):
            s = sel[det_rank[sel] < max_det]
            nd = len(s)
            for a in range(n_area):
                if npig[a, k] == 0:
                    continue
                cols = slice(a * n_thr, (a + 1) * n_thr)
                tp_sum = np.cumsum(det_tp[s, cols].T, axis=1).astype(np.float64)
                fp_sum = np.cumsum(det_fp[s, cols].T, axis=1).astype(np.float64)
                rc = tp_sum / npig[a, k]
                pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                recall[:, k, a, m] = rc[:, -1] if nd else 0
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(n_thr):
                    inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                    q = np.zeros(n_rec)
                    ok = inds < nd
                    q[ok] = pr[t, inds[ok]]
                    precision[t, :, k, a, m] = q
    return precision, recall


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The COCO summary numbers, computed as the official summarize() does."""
    labels = list(AREA_RANGES)

    def mean(ap: bool, iou: float | None = None, area: str = "all", max_det: int = 100) -> float:
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        a, m = labels.index(area), MAX_DETS.index(max_det)
        s = s[:, :, :, a, m] if ap else s[:, :, a, m]
        defined = s[s > -1]
        return -1.0 if defined.size == 0 else float(np.mean(defined))

    return {"AP": mean(True), "AP50": mean(True, .5), "AP75": mean(True, .75),
            "APs": mean(True, area="small"), "APm": mean(True, area="medium"),
            "APl": mean(True, area="large"), "AR1": mean(False, max_det=1),
            "AR10": mean(False, max_det=10)}


def evaluate_ytvis(gt_json: GroundTruthSource, results: ResultsSource) -> dict[str, float]:
    """AP, AP50, AP75, APs, APm, APl, AR1, AR10 (0..1, -1 where undefined) of ``results``.

    gt_json: path or dict in the YouTube-VIS ``train.json`` schema; results: path or list of
    {video_id, category_id, score, segmentations}. Numbers equal the official evaluation's.
    """
    with _gc_paused():  # millions of small objects: collection passes would cost a third
        gt = load_ground_truth(gt_json)
        dets = load_results(results, gt)
        groups = _Groups(gt, dets)
    tp, fp = _match(groups)
    precision, recall = _accumulate(groups, tp, fp, len(gt.category_ids))
    return _summarize(precision, recall)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector in the block (restored after, also on errors)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
