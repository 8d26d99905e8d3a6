"""YouTube-VIS evaluation: hand-computed cases, invariants, the official quirks, bad input."""
import contextlib
import io
import json
import random

import numpy as np
import pytest
from metrics_fixtures import box, detection, rle, ytvis_gt
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tagvis_lib.cli import main
from tagvis_lib.errors import DataFormatError
from tagvis_lib.metrics import evaluate_ytvis, ytvis_track_iou

H, W = 24, 32


def _two_video_case():
    """Two videos of 3 frames: video 1 has a cat-1 and a cat-2 track, video 2 a cat-1 track."""
    t1 = [box(H, W, 2, 2, 12, 12), box(H, W, 3, 3, 13, 13), box(H, W, 4, 4, 14, 14)]
    t2 = [None, box(H, W, 14, 16, 22, 30), box(H, W, 14, 17, 22, 31)]
    t3 = [box(H, W, 0, 20, 10, 30), box(H, W, 1, 20, 11, 30), None]
    gt = ytvis_gt({1: (H, W, 3), 2: (H, W, 3)},
                  [{"video_id": 1, "category_id": 1, "masks": t1},
                   {"video_id": 1, "category_id": 2, "masks": t2},
                   {"video_id": 2, "category_id": 1, "masks": t3}])
    return gt, (t1, t2, t3)


def test_perfect_prediction_scores_one():
    gt, (t1, t2, t3) = _two_video_case()
    res = [detection(1, 1, 0.9, t1), detection(1, 2, 0.8, t2), detection(2, 1, 0.7, t3)]
    out = evaluate_ytvis(gt, res)
    for key in ("AP", "AP50", "AP75", "APs", "AR1", "AR10"):
        assert out[key] == 1.0, key
    assert out["APm"] == -1.0 and out["APl"] == -1.0  # no track that large: undefined


def test_one_wrong_frame_changes_track_iou_by_hand_count():
    g = [box(H, W, 0, 0, 10, 10)] * 3  # 100 px per frame
    d = [box(H, W, 0, 0, 10, 10), box(H, W, 0, 0, 10, 10), box(H, W, 0, 5, 10, 15)]
    # frames 0, 1: I = U = 100; frame 2: I = 50, U = 150 -> IoU = 250 / 350
    iou = ytvis_track_iou([[rle(m) for m in d]], [[rle(m) for m in g]])
    assert iou.shape == (1, 1) and iou[0, 0] == 250 / 350
    # detection absent in frame 2: its 100 gt pixels join the union only
    d_null = [rle(d[0]), rle(d[1]), None]
    assert ytvis_track_iou([d_null], [[rle(m) for m in g]])[0, 0] == 200 / 300


def test_all_zero_rle_counts_as_present_and_empty_union_is_zero():
    g = [box(H, W, 0, 0, 4, 4), None]
    zero = np.zeros((H, W), bool)
    with_zero = [rle(g[0]), rle(zero)]
    with_null = [rle(g[0]), None]
    gts = [[rle(g[0]), None]]
    assert ytvis_track_iou([with_zero], gts)[0, 0] == ytvis_track_iou([with_null], gts)[0, 0] == 1.0
    assert ytvis_track_iou([[None, rle(zero)]], [[None, None]])[0, 0] == 0.0


def test_missing_instance_lowers_recall_and_ap_as_counted():
    a, b = box(H, W, 0, 0, 8, 8), box(H, W, 10, 10, 20, 20)
    gt = ytvis_gt({1: (H, W, 1)}, [{"video_id": 1, "category_id": 1, "masks": [a]},
                                   {"video_id": 1, "category_id": 1, "masks": [b]}])
    out = evaluate_ytvis(gt, [detection(1, 1, 0.9, [a])])
    assert out["AR1"] == out["AR10"] == 0.5
    # precision 1 up to recall 0.5: 51 of the 101 recall thresholds
    assert out["AP"] == pytest.approx(51 / 101, abs=1e-15)


def _random_case(seed: int, videos: int = 4, frames: int = 3):
    rng = np.random.default_rng(seed)
    tracks, res = [], []
    for v in range(1, videos + 1):
        for _ in range(3):
            y, x = rng.integers(0, H - 8), rng.integers(0, W - 8)
            s = int(rng.integers(3, 8))
            masks = [box(H, W, y, x + f, y + s, x + s + f) if rng.random() > 0.2 else None
                     for f in range(frames)]
            cat = int(rng.integers(1, 3))
            tracks.append({"video_id": v, "category_id": cat, "masks": masks})
            for _ in range(int(rng.integers(0, 3))):
                dy, dx = rng.integers(-2, 3, 2)
                noisy = [None if m is None else np.roll(m, (dy, dx), axis=(0, 1)) for m in masks]
                res.append(detection(v, cat if rng.random() < 0.8 else 3 - cat,
                                     round(float(rng.random()), 2), noisy))
    return ytvis_gt({v: (H, W, frames) for v in range(1, videos + 1)}, tracks), res


def test_order_of_results_does_not_matter():
    gt, res = _random_case(0)
    for i, r in enumerate(res):  # distinct scores: file order only breaks ties
        r["score"] = 0.01 + i / (2 * len(res))
    base = evaluate_ytvis(gt, res)
    shuffled = res[:]
    random.Random(1).shuffle(shuffled)
    assert evaluate_ytvis(gt, shuffled) == base
    assert 0 < base["AP"] < 1


def test_scores_only_order():
    gt, res = _random_case(1)
    base = evaluate_ytvis(gt, res)
    squashed = [dict(r, score=0.2 + 0.5 * r["score"] ** 3) for r in res]
    assert evaluate_ytvis(gt, squashed) == base


def test_crowd_ground_truth_is_ignored():
    a, crowd = box(H, W, 0, 0, 8, 8), box(H, W, 12, 12, 20, 24)
    gt = ytvis_gt({1: (H, W, 1)}, [{"video_id": 1, "category_id": 1, "masks": [a]},
                                   {"video_id": 1, "category_id": 1, "masks": [crowd],
                                    "iscrowd": 1}])
    res = [detection(1, 1, 0.9, [a]), detection(1, 1, 0.8, [crowd]), detection(1, 1, 0.7, [crowd])]
    out = evaluate_ytvis(gt, res)  # both crowd matches are ignored, neither TP nor FP
    # (precision tp / (tp + fp + eps) is 1 - 2e-16 with a single true positive, as officially)
    assert out["AP"] == pytest.approx(1.0, abs=1e-15) and out["AR10"] == 1.0
    without_crowd = evaluate_ytvis(gt, res[:1])
    assert out == without_crowd


def test_area_range_bounds_are_inclusive():
    side = 128
    big = box(side + 2, side + 2, 0, 0, side, side)  # area exactly 128^2
    gt = ytvis_gt({1: (side + 2, side + 2, 1)}, [{"video_id": 1, "category_id": 1, "masks": [big]}])
    out = evaluate_ytvis(gt, [detection(1, 1, 0.5, [big])])
    assert out["APs"] == out["APm"] == pytest.approx(1.0, abs=1e-15) and out["APl"] == -1.0


def test_ground_truth_area_comes_from_the_areas_field_without_nulls_and_zeros():
    m = box(H, W, 0, 0, 5, 5)
    # declared areas: mean of (0 and null dropped) 20000 -> medium, whatever the masks say
    gt = ytvis_gt({1: (H, W, 3)}, [{"video_id": 1, "category_id": 1, "masks": [m, m, None],
                                    "areas": [20000, 0, None]}])
    out = evaluate_ytvis(gt, [detection(1, 1, 0.5, [m, m, None])])
    # medium only; the matched detection counts there although its own area (25) is small
    assert out["APm"] == pytest.approx(1.0, abs=1e-15) and out["APs"] == -1.0


def test_category_without_ground_truth_is_excluded():
    gt, (t1, t2, t3) = _two_video_case()
    res = [detection(1, 1, 0.9, t1), detection(1, 2, 0.8, t2), detection(2, 1, 0.7, t3)]
    gt["categories"].append({"id": 3, "name": "c3", "supercategory": "x"})
    out = evaluate_ytvis(gt, res + [detection(1, 3, 0.95, t1)])
    assert out["AP"] == 1.0


def test_match_to_ground_truth_with_id_zero_counts_as_unmatched():
    a = box(H, W, 0, 0, 8, 8)
    gt = ytvis_gt({1: (H, W, 1)}, [{"video_id": 1, "category_id": 1, "masks": [a], "id": 0}])
    assert evaluate_ytvis(gt, [detection(1, 1, 0.9, [a])])["AP"] == 0.0


def _coco_from_single_frames(gt: dict, res: list) -> tuple[dict, list]:
    images = [{"id": v["id"], "height": v["height"], "width": v["width"]} for v in gt["videos"]]
    anns = []
    for a in gt["annotations"]:
        seg = a["segmentations"][0]
        if seg is None:
            continue
        anns.append({"id": a["id"], "image_id": a["video_id"], "category_id": a["category_id"],
                     "iscrowd": 0, "area": a["areas"][0],
                     "segmentation": {"size": seg["size"], "counts": seg["counts"]},
                     "bbox": [0, 0, 1, 1]})
    dets = [{"image_id": r["video_id"], "category_id": r["category_id"], "score": r["score"],
             "segmentation": r["segmentations"][0]} for r in res if r["segmentations"][0]]
    return {"images": images, "annotations": anns, "categories": gt["categories"]}, dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_frame_videos_match_pycocotools_cocoeval(seed):
    """A one-frame video is an image: COCOeval (segm, YouTube-VIS area ranges) must agree."""
    gt, res = _random_case(seed, videos=12, frames=1)
    gt["annotations"] = [a for a in gt["annotations"] if a["segmentations"][0] is not None]
    res = [r for r in res if r["segmentations"][0] is not None]
    coco_gt, coco_dt = _coco_from_single_frames(gt, res)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = coco_gt
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes(coco_dt), "segm")
        ev.params.areaRng = [[0, 1e10], [0, 128 ** 2], [128 ** 2, 256 ** 2], [256 ** 2, 1e10]]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    out = evaluate_ytvis(gt, res)
    names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"]
    assert [out[n] for n in names] == [float(s) for s in ev.stats[:8]]


def test_paths_and_dicts_give_the_same_numbers(tmp_path):
    gt, res = _random_case(3)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    assert evaluate_ytvis(tmp_path / "gt.json", tmp_path / "res.json") == evaluate_ytvis(gt, res)


def test_empty_results_score_zero():
    gt, _ = _two_video_case()
    out = evaluate_ytvis(gt, [])
    assert out["AP"] == 0.0 and out["AR10"] == 0.0


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r[1].update(video_id=99), "[1].video_id"),
    (lambda r: r[0]["segmentations"].pop(), "[0].segmentations"),
    (lambda r: r[0]["segmentations"][0].update(size=[H, W + 1]), "[0].segmentations[0].size"),
    (lambda r: r[2].pop("score"), "[2].score"),
    (lambda r: r[2].update(score="high"), "[2].score"),
    (lambda r: r[0]["segmentations"].__setitem__(1, {"counts": "abc"}), "[0].segmentations[1]"),
])
def test_malformed_results_name_the_entry(tmp_path, mutate, field):
    gt, (t1, t2, t3) = _two_video_case()
    res = [detection(1, 1, 0.9, t1), detection(1, 2, 0.8, t2), detection(2, 1, 0.7, t3)]
    mutate(res)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(res))
    with pytest.raises(DataFormatError) as err:
        evaluate_ytvis(gt, path)
    assert err.value.path == str(path) and err.value.field == field


def test_malformed_ground_truth_counts_are_reported():
    gt, (t1, t2, t3) = _two_video_case()
    gt["annotations"][0]["segmentations"][0]["counts"][0] += 1
    with pytest.raises(DataFormatError, match=r"annotations\[0\]\.segmentations\[0\]\.counts"):
        evaluate_ytvis(gt, [detection(1, 1, 0.9, t1)])


def test_cli_prints_one_json_line_and_reports_bad_input(tmp_path, capsys):
    gt, (t1, t2, t3) = _two_video_case()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps([detection(1, 1, 0.9, t1)]))
    assert main(["evaluate", "ytvis", str(tmp_path / "gt.json"), str(tmp_path / "res.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and set(json.loads(lines[0])) == {
        "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"}
    (tmp_path / "bad.json").write_text(json.dumps([detection(7, 1, 0.9, t1)]))
    assert main(["evaluate", "ytvis", str(tmp_path / "gt.json"), str(tmp_path / "bad.json")]) == 2
    assert "unknown video id 7" in capsys.readouterr().err


def _counts_of(mask):
    return rle(mask)["counts"]


@pytest.mark.parametrize("case", ["longer", "shorter", "garbage", "wider_mask", "unfinished"])
def test_a_bad_compressed_rle_is_refused_naming_the_entry(case):
    gt, (t1, t2, t3) = _two_video_case()
    det = detection(1, 1, 0.9, t1)
    good = det["segmentations"][1]["counts"]
    counts = {
        "longer": good + "5",  # one more run: the runs add up to more than H x W
        "shorter": good[:-2] if len(good) > 2 else "0",
        "garbage": "garbage!!",
        "wider_mask": _counts_of(np.zeros((H, W + 1), bool)),
        "unfinished": good[:-1] + "o",
    }[case]
    det["segmentations"][1] = {"size": [H, W], "counts": counts}
    with pytest.raises(DataFormatError, match=r"\[0\]\.segmentations\[1\]\.counts"):
        evaluate_ytvis(gt, [det])


def test_a_bad_polygon_and_a_directory_are_clear_errors(tmp_path):
    gt, (t1, _, _) = _two_video_case()
    det = detection(1, 1, 0.9, t1)
    det["segmentations"][0] = [[1, 2, 3]]
    with pytest.raises(DataFormatError, match=r"\[0\]\.segmentations\[0\].*polygons"):
        evaluate_ytvis(gt, [det])
    with pytest.raises(DataFormatError, match="is a directory"):
        evaluate_ytvis(gt, tmp_path)


def test_results_are_read_from_the_server_zip(tmp_path):
    import zipfile

    gt, (t1, t2, t3) = _two_video_case()
    res = [detection(1, 1, 0.9, t1), detection(1, 2, 0.8, t2)]
    with zipfile.ZipFile(tmp_path / "results.zip", "w") as archive:
        archive.writestr("results.json", json.dumps(res))
    assert evaluate_ytvis(gt, tmp_path / "results.zip") == evaluate_ytvis(gt, res)
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.json", "[]")
        archive.writestr("b.json", "[]")
    with pytest.raises(DataFormatError, match="exactly one .json"):
        evaluate_ytvis(gt, tmp_path / "two.zip")


def test_unknown_categories_keep_the_official_number_and_warn(tmp_path, capsys):
    gt, (t1, t2, t3) = _two_video_case()
    res = [detection(1, 1, 0.9, t1), detection(1, 2, 0.8, t2), detection(2, 1, 0.7, t3)]
    extra = res + [detection(1, 99, 0.95, t1), detection(2, 98, 0.5, t3)]
    from tagvis_lib.errors import DataWarning

    with pytest.warns(DataWarning, match=r"2 result\(s\).*\[3\]\.category_id 99"):
        assert evaluate_ytvis(gt, extra) == evaluate_ytvis(gt, res)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(extra))
    assert main(["evaluate", "ytvis", str(tmp_path / "gt.json"), str(tmp_path / "res.json")]) == 0
    err = capsys.readouterr().err
    assert "tagvis evaluate: warning:" in err and "category_id 99" in err and len(err.strip().splitlines()) == 1
