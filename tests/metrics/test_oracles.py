"""oracle_bounds: each oracle repairs exactly its part of a result, on hand-built cases."""
import numpy as np
import pytest
from metrics_fixtures import track_rles

from tagvis_lib.errors import DataFormatError
from tagvis_lib.metrics import evaluate_ytvis, oracle_bounds, oracle_results

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
T, H, W = 3, 20, 40


def _box(y0, y1, x0, x1, frames=range(T)):
    m = np.zeros((T, H, W), bool)
    for t in frames:
        m[t, y0:y1, x0:x1] = True
    return m


def _gt(tracks):
    return {"videos": [{"id": 1, "height": H, "width": W, "length": T}],
            "categories": [{"id": i, "name": str(i)} for i in (1, 2)],
            "annotations": [{"id": i + 1, "video_id": 1, "category_id": c, "segmentations": track_rles(m),
                             "areas": [int(m[t].sum()) or None for t in range(T)]} for i, (c, m) in enumerate(tracks)]}


def _res(c, score, m):
    return {"video_id": 1, "category_id": c, "score": score, "segmentations": track_rles(m)}


def test_perfect_results_score_one_under_every_oracle():
    a, b = _box(0, 10, 0, 10), _box(0, 10, 10, 20)
    gt = _gt([(1, a), (2, b)])
    bounds = oracle_bounds(gt, [_res(1, 0.9, a), _res(2, 0.8, b)])
    assert sorted(bounds) == ["class_oracle", "grouping_oracle", "linking_oracle", "predicted"]
    assert all(v["AP"] == pytest.approx(1.0) for v in bounds.values())


def test_class_oracle_repairs_the_class_and_nothing_else():
    a, b = _box(0, 10, 0, 10), _box(10, 20, 20, 30)
    gt = _gt([(1, a), (2, b)])
    res = [_res(2, 0.9, a), _res(2, 0.8, b | _box(0, 10, 30, 40))]  # a under the wrong class; b's mask poor
    out = oracle_results(gt, res)
    assert [r["category_id"] for r in out["class_oracle"]] == [1, 2]
    assert out["class_oracle"][1]["segmentations"] == res[1]["segmentations"]
    bounds = oracle_bounds(gt, res)
    assert bounds["predicted"]["AP50"] < bounds["class_oracle"]["AP50"]
    assert bounds["class_oracle"]["AP"] == pytest.approx(evaluate_ytvis(gt, out["class_oracle"])["AP"])
    assert bounds["class_oracle"]["AP"] < 1.0  # b's poor mask is not repaired


def test_grouping_oracle_cuts_a_merged_and_a_split_prediction_along_the_tracks():
    a, b = _box(0, 10, 0, 10), _box(0, 10, 10, 20)  # touching, same class
    c = _box(10, 20, 0, 20)  # cut in time into two predicted pieces
    gt = _gt([(1, a), (1, b), (2, c)])
    early, late = _box(10, 20, 0, 20, frames=[0]), _box(10, 20, 0, 20, frames=[1, 2])
    res = [_res(1, 0.9, a | b), _res(2, 0.7, early), _res(2, 0.6, late), _res(2, 0.01, _box(0, 5, 30, 40))]
    out = oracle_results(gt, res, score_threshold=0.05)
    group = out["grouping_oracle"]
    assert len(group) == 3
    assert [r["segmentations"] for r in group] == [track_rles(a), track_rles(b), track_rles(c)]
    assert [(r["category_id"], r["score"]) for r in group] == [(1, 0.9), (1, 0.9), (2, 0.6)]  # c: the larger piece's
    bounds = oracle_bounds(gt, res, score_threshold=0.05)
    assert bounds["predicted"]["AP"] < 0.5 and bounds["grouping_oracle"]["AP"] == pytest.approx(1.0)


def test_linking_oracle_joins_the_pieces_of_a_track_and_keeps_merges():
    a, b = _box(0, 10, 0, 10), _box(0, 10, 10, 20)  # touching, same class
    c = _box(10, 20, 0, 20)
    gt = _gt([(1, a), (1, b), (2, c)])
    early, late = _box(10, 20, 0, 20, frames=[0]), _box(10, 20, 0, 20, frames=[1, 2])
    stray = _box(0, 5, 30, 40)
    res = [_res(1, 0.9, a | b), _res(1, 0.7, early), _res(2, 0.6, late), _res(2, 0.3, stray)]
    linking = oracle_results(gt, res)["linking_oracle"]
    assert len(linking) == 3
    assert linking[0]["segmentations"] == res[0]["segmentations"]  # the merge of a and b stays
    assert linking[1] == {"video_id": 1, "category_id": 2, "score": 0.7, "segmentations": track_rles(c)}
    assert linking[2] == res[3]  # overlaps nothing: unchanged
    bounds = oracle_bounds(gt, res)
    assert bounds["predicted"]["AP"] < bounds["linking_oracle"]["AP"] < bounds["grouping_oracle"]["AP"]


def test_grouping_oracle_keeps_the_predicted_foreground_and_class():
    a = _box(0, 10, 0, 10)
    gt = _gt([(1, a)])
    half = _box(0, 10, 0, 5)
    out = oracle_results(gt, [_res(2, 0.5, half | _box(10, 20, 30, 40))])
    assert out["grouping_oracle"] == [{"video_id": 1, "category_id": 2, "score": 0.5, "segmentations": track_rles(half)}]
    assert oracle_bounds(gt, [_res(2, 0.5, half)])["grouping_oracle"]["AP"] == 0.0  # wrong class stays wrong


def test_bad_results_are_named():
    gt = _gt([(1, _box(0, 10, 0, 10))])
    with pytest.raises(DataFormatError, match="score"):
        oracle_results(gt, [{"video_id": 1, "category_id": 1, "segmentations": track_rles(_box(0, 2, 0, 2))}])
