"""DAVIS 2017 J and F: hand-computed cases, a slow transcription of the official formulas, the
official quirks (K from the first frame, void left out, padding, assignment), bad input."""
import json

import numpy as np
import pytest
from metrics_fixtures import box, davis_tree, save_labels
from scipy.optimize import linear_sum_assignment

from tagvis_lib.cli import main
from tagvis_lib.errors import DataFormatError
from tagvis_lib.metrics import db_eval_boundary, db_eval_iou, evaluate_davis
from tagvis_lib.metrics.davis import boundary_map, davis_statistics, f_measure
from tagvis_lib.metrics.davis_pairs import dilate_bits, pair_boundary, pair_iou


# ---- slow transcription of the official per-frame definitions (loops, no shared code) ----
def slow_boundary(mask):
    h, w = mask.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (1, 1)):
                if y + dy < h and x + dx < w and mask[y, x] != mask[y + dy, x + dx]:
                    out[y, x] = True
    return out


def slow_near(points, others, r):
    """How many of ``points`` lie within Euclidean distance r of some pixel of ``others``."""
    oy, ox = np.nonzero(others)
    return sum(1 for y, x in zip(*np.nonzero(points))
               if ((oy - y) ** 2 + (ox - x) ** 2 <= r * r).any())


def slow_f(seg, ann, void, r):
    keep = ~void
    bs, bg = slow_boundary(seg & keep), slow_boundary(ann & keep)
    n_fg, n_gt = int(bs.sum()), int(bg.sum())
    if n_fg == 0 and n_gt > 0:
        p, rc = 1, 0
    elif n_fg > 0 and n_gt == 0:
        p, rc = 0, 1
    elif n_fg == 0 and n_gt == 0:
        p, rc = 1, 1
    else:
        p, rc = slow_near(bs, bg, r) / float(n_fg), slow_near(bg, bs, r) / float(n_gt)
    return 0 if p + rc == 0 else 2 * p * rc / (p + rc)


def slow_j(seg, ann, void):
    inter, union = (seg & ann & ~void).sum(), ((seg | ann) & ~void).sum()
    return 1.0 if union == 0 else inter / union


def random_labels(rng, h, w, n):
    labels = np.zeros((h, w), np.uint8)
    for k in range(1, n + 1):
        y, x = rng.integers(0, h), rng.integers(0, w)
        labels[max(0, y - rng.integers(1, 5)):y + rng.integers(1, 5),
               max(0, x - rng.integers(1, 6)):x + rng.integers(1, 6)] = k
    return labels


# ---- per-frame measures ----
def test_iou_hand_cases():
    a, b = box(6, 6, 0, 0, 2, 4), box(6, 6, 0, 2, 2, 6)  # 8 px each, 4 shared
    assert db_eval_iou(a, b) == 4 / 12
    assert db_eval_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0
    void = box(6, 6, 0, 4, 2, 6)  # hides 4 px of b
    assert db_eval_iou(a, b, void) == 4 / 8


def test_boundary_of_a_square_and_the_border_quirk():
    square = box(40, 40, 10, 10, 20, 20)
    # inside: last row (10) + last column (9); outside: row above (11) + column left (10)
    assert boundary_map(square).sum() == 40
    left_block = box(20, 30, 0, 0, 20, 10)  # touches top, bottom and left border
    assert np.array_equal(np.nonzero(boundary_map(left_block))[1], np.full(20, 9))


@pytest.mark.parametrize("shift, radius, expected", [(1, 1, 1.0), (2, 2, 1.0), (2, 1, 0.0)])
def test_boundary_f_of_a_shifted_edge_against_the_radius(shift, radius, expected):
    a = box(20, 30, 0, 0, 20, 10)
    b = box(20, 30, 0, 0, 20, 10 + shift)
    assert f_measure(b, a, bound_th=radius) == expected


def test_boundary_f_partial_match_counted_by_hand():
    a = box(20, 30, 0, 0, 20, 10)                      # boundary: column 9, 20 px
    b = a | box(20, 30, 10, 0, 20, 13)                  # boundary: 9 + 4 + 10 = 23 px
    # radius 1: 11 of b's boundary pixels are near a's; 11 of a's near b's
    p, r = 11 / 23, 11 / 20
    assert f_measure(b, a, bound_th=1) == 2 * p * r / (p + r)


def test_empty_boundaries():
    empty, sq = np.zeros((10, 10), bool), box(10, 10, 2, 2, 5, 5)
    assert f_measure(empty, empty) == 1.0
    assert f_measure(empty, sq) == 0.0 and f_measure(sq, empty) == 0.0


def test_per_frame_functions_match_the_slow_transcription():
    rng = np.random.default_rng(0)
    for trial in range(12):
        h, w = (int(v) for v in rng.integers(6, 18, 2))
        ann, seg = random_labels(rng, h, w, 1) > 0, random_labels(rng, h, w, 2) > 0
        void = rng.random((h, w)) < 0.1 if trial % 2 else np.zeros((h, w), bool)
        r = 1 + trial % 3
        assert f_measure(seg, ann, void, bound_th=r) == slow_f(seg, ann, void, r)
        assert db_eval_iou(ann, seg, void) == slow_j(seg, ann, void)
        assert db_eval_boundary(ann[None], seg[None], void[None], bound_th=r)[0] == slow_f(
            seg, ann, void, r)


def test_all_pairs_at_once_equal_the_per_pair_functions():
    rng = np.random.default_rng(1)
    for trial in range(10):
        h, w = (int(v) for v in rng.integers(8, 30, 2))
        n_obj, n_prop = int(rng.integers(0, 4)), int(rng.integers(0, 5))
        gt, res = random_labels(rng, h, w, n_obj), random_labels(rng, h, w, n_prop)
        keep = None if trial % 2 else rng.random((h, w)) > 0.15
        void = np.zeros((h, w), bool) if keep is None else ~keep
        r = 1 + trial % 4
        j = pair_iou(gt, res, n_obj, n_prop, keep)
        f = pair_boundary(gt, res, n_obj, n_prop, r, keep)
        for p in range(n_prop):
            for k in range(n_obj):
                assert j[p, k] == db_eval_iou(gt == k + 1, res == p + 1, void)
                assert f[p, k] == f_measure(res == p + 1, gt == k + 1, void, bound_th=r)


def test_dilation_is_the_disk_for_packed_bits():
    rng = np.random.default_rng(2)
    bits = (rng.random((30, 41)) < 0.03).astype(np.uint8) * rng.integers(1, 256, (30, 41),
                                                                         dtype=np.uint8)
    for r in (1, 3, 8):
        out = dilate_bits(bits, r, strip=7)
        for bit in range(8):
            plane = (bits >> bit) & 1
            near = np.zeros_like(plane, bool)
            for y, x in zip(*np.nonzero(plane)):
                yy, xx = np.ogrid[:30, :41]
                near |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
            assert np.array_equal((out >> bit) & 1 == 1, near)


def test_statistics_by_hand():
    values = np.array([1.0, 0.8, 0.6, 0.4, 0.2])  # bins [0:2], [1:3], [2:4], [3:5] (edges 0..4)
    mean, recall, decay = davis_statistics(values)
    assert mean == pytest.approx(0.6) and recall == 0.6
    assert decay == pytest.approx(np.mean([1.0, 0.8]) - np.mean([0.4, 0.2]))


# ---- the whole evaluation ----
def _moving_objects(n_frames, h=24, w=32, void=True):
    frames = []
    for t in range(n_frames):
        lab = np.zeros((h, w), np.uint8)
        lab[2 + t:8 + t, 2:10] = 1
        lab[12:20, 14 + t:24 + t] = 2
        if void:
            lab[8 + t, 2:10] = 255  # void band under object 1
        frames.append(lab)
    return frames


def _without_void(frames):
    return [np.where(f == 255, 0, f).astype(np.uint8) for f in frames]


def test_perfect_and_permuted_results_score_one(tmp_path):
    gt = _moving_objects(5)
    permuted = [np.select([f == 1, f == 2], [3, 1], 0).astype(np.uint8) for f in _without_void(gt)]
    davis, res = davis_tree(tmp_path, {"a": gt, "b": gt}, {"a": _without_void(gt), "b": permuted})
    out = evaluate_davis(davis, res)
    for key in ("J&F-Mean", "J-Mean", "J-Recall", "F-Mean", "F-Recall"):
        assert out[key] == 1.0, key
    assert out["J-Decay"] == 0.0 and out["F-Decay"] == 0.0
    assert out["per_sequence"]["b"] == {"J": [1.0, 1.0], "F": [1.0, 1.0]}


def test_void_is_left_out_of_j_and_f_as_in_the_official_code(tmp_path):
    # davis2017-evaluation: DAVIS.get_all_masks records masks == 255 as void before it sets them to 0,
    # and db_eval_iou / db_eval_boundary drop the void pixels from both masks.
    gt = _moving_objects(4)
    painted = [np.where(f == 255, 1, f).astype(np.uint8) for f in gt]  # also predicts the void band
    davis, res = davis_tree(tmp_path, {"a": gt}, {"a": painted})
    official = evaluate_davis(davis, res)
    # void aside, both masks are the same: J = 1, and F = 1 (the boundaries of equal masks)
    assert official["per_sequence"]["a"] == {"J": [1.0, 1.0], "F": [1.0, 1.0]}
    assert official["J&F-Mean"] == 1.0
    counted = evaluate_davis(davis, res, count_void=True)
    # void as background: object 1 is 6x8 = 48 px, the band adds 8 false-positive px in every frame
    assert counted["per_sequence"]["a"]["J"][0] == pytest.approx(48 / 56)
    assert counted["per_sequence"]["a"]["J"][1] == 1.0
    assert counted["J&F-Mean"] < 1.0  # (F stays 1: the 1-px shift is within the boundary tolerance)


def test_void_changes_the_score_of_a_missed_band(tmp_path):
    # a result that misses what lies under the void band: official J counts only the non-void pixels
    gt = _moving_objects(3)
    res_frames = [np.where(f == 255, 0, f).astype(np.uint8) for f in gt]
    for f in res_frames:  # erase the object's last row; the band is right below it
        rows = np.flatnonzero((f == 1).any(1))
        f[rows[-1], 2:10] = 0
    davis, res = davis_tree(tmp_path, {"a": gt}, {"a": res_frames})
    official = evaluate_davis(davis, res)["per_sequence"]["a"]["J"][0]
    counted = evaluate_davis(davis, res, count_void=True)["per_sequence"]["a"]["J"][0]
    assert official == pytest.approx(40 / 48) == counted  # the band is outside both masks here


def test_evaluate_command_says_when_void_is_counted(tmp_path, capsys):
    from tagvis_lib.cli import main

    gt = _moving_objects(3)
    davis, res = davis_tree(tmp_path, {"a": gt}, {"a": [np.where(f == 255, 1, f).astype(np.uint8) for f in gt]})
    assert main(["evaluate", "davis", str(davis), str(res)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["J-Mean"] == 1.0 and "official" not in out.err
    assert main(["evaluate", "davis", str(davis), str(res), "--count-void"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["J-Mean"] < 1.0 and "NOT the official" in out.err


def test_objects_come_from_the_first_frame_and_missing_proposals_are_padded(tmp_path):
    gt = _without_void(_moving_objects(4))
    for f in gt[1:]:
        f[20:23, 0:4] = 3  # an object that appears after the first frame: not evaluated
    only_first = [np.where(f == 1, 1, 0).astype(np.uint8) for f in gt]
    davis, res = davis_tree(tmp_path, {"a": gt}, {"a": only_first})
    out = evaluate_davis(davis, res)
    assert out["per_sequence"]["a"]["J"] == [1.0, 0.0]
    assert out["J-Mean"] == 0.5 and out["J-Recall"] == 0.5


def test_whole_evaluation_matches_a_slow_transcription(tmp_path):
    rng = np.random.default_rng(3)
    gts, ress = {}, {}
    for s in range(3):
        n_frames = int(rng.integers(2, 7))
        gts[f"s{s}"] = [random_labels(rng, 14, 18, 3) for _ in range(n_frames)]
        gts[f"s{s}"][0][0, 0] = 255
        ress[f"s{s}"] = [random_labels(rng, 14, 18, int(rng.integers(1, 5)))
                         for _ in range(n_frames)]
    davis, res = davis_tree(tmp_path, gts, ress)
    out = evaluate_davis(davis, res, workers=2)
    pooled = {"J": [], "F": []}
    for seq in gts:
        gt = [np.where(g == 255, 0, g) for g in gts[seq]]
        n_obj = int(gt[0].max())
        n_prop = max(max(int(r.max()) for r in ress[seq]), n_obj)
        r = int(np.ceil(0.008 * np.hypot(14, 18)))
        none = np.zeros((14, 18), bool)
        j = np.array([[[slow_j(rs == p, g == k, none) for g, rs in zip(gt, ress[seq])]
                       for k in range(1, n_obj + 1)] for p in range(1, n_prop + 1)])
        f = np.array([[[slow_f(rs == p, g == k, none, r) for g, rs in zip(gt, ress[seq])]
                       for k in range(1, n_obj + 1)] for p in range(1, n_prop + 1)])
        rows, cols = linear_sum_assignment(-(j.mean(2) + f.mean(2)) / 2)
        for row, col in zip(rows, cols):
            pooled["J"].append(j[row, col])
            pooled["F"].append(f[row, col])
            assert out["per_sequence"][seq]["J"][col] == pytest.approx(j[row, col].mean(),
                                                                       abs=1e-12)
    assert out["J-Mean"] == pytest.approx(np.mean([v.mean() for v in pooled["J"]]), abs=1e-12)
    assert out["F-Recall"] == pytest.approx(np.mean([(v > 0.5).mean() for v in pooled["F"]]),
                                            abs=1e-12)
    assert out["J&F-Mean"] == pytest.approx((out["J-Mean"] + out["F-Mean"]) / 2, abs=1e-15)


def _tree(tmp_path):
    gt = _moving_objects(3)
    return davis_tree(tmp_path, {"a": gt}, {"a": _without_void(gt)})


def test_missing_sequence_folder_and_frame(tmp_path):
    davis, res = _tree(tmp_path)
    (res / "a" / "00002.png").unlink()
    with pytest.raises(DataFormatError, match="00002.png: missing result PNG"):
        evaluate_davis(davis, res)
    with pytest.raises(DataFormatError, match="missing results folder"):
        evaluate_davis(davis, tmp_path / "elsewhere")


def test_result_png_of_another_size_or_with_colours(tmp_path):
    davis, res = _tree(tmp_path)
    save_labels(np.zeros((10, 10), np.uint8), res / "a" / "00001.png")
    with pytest.raises(DataFormatError) as err:
        evaluate_davis(davis, res)
    assert err.value.path.endswith("00001.png") and err.value.field == "size"
    from PIL import Image
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(res / "a" / "00001.png")
    with pytest.raises(DataFormatError, match="single-channel"):
        evaluate_davis(davis, res)


def test_a_jpeg_under_a_png_name_is_refused_naming_it(tmp_path):
    from PIL import Image

    davis, res = _tree(tmp_path)
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(res / "a" / "00001.png", format="JPEG")
    with pytest.raises(DataFormatError, match="JPEG") as err:
        evaluate_davis(davis, res)
    assert err.value.path.endswith("00001.png") and err.value.field == "format"


def test_more_than_twenty_proposals_is_refused(tmp_path):
    davis, res = _tree(tmp_path)
    lab = np.zeros((24, 32), np.uint8)
    lab[0, :21] = np.arange(1, 22)
    save_labels(lab, res / "a" / "00000.png")
    with pytest.raises(DataFormatError, match="at most 20 proposals"):
        evaluate_davis(davis, res)


def test_cli_prints_one_json_line(tmp_path, capsys):
    davis, res = _tree(tmp_path)
    assert main(["evaluate", "davis", str(davis), str(res), "--set", "val"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    out = json.loads(lines[0])
    assert len(lines) == 1 and out["J&F-Mean"] == 1.0 and set(out["per_sequence"]) == {"a"}
    assert main(["evaluate", "davis", str(davis), str(tmp_path / "none")]) == 2
