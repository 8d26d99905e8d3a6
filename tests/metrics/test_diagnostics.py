"""diagnose_ytvis: each error kind, the confusion matrix and foreground IoU on hand-built cases."""
import numpy as np
import pytest
from metrics_fixtures import track_rles

from tagvis_lib.errors import TagvisError
from tagvis_lib.metrics.diagnostics import diagnose_ytvis

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
T, H, W = 2, 20, 40


def _box(y0, y1, x0, x1):
    m = np.zeros((T, H, W), bool)
    m[:, y0:y1, x0:x1] = True
    return m


def _case():
    a, b = _box(0, 10, 0, 10), _box(0, 10, 10, 20)  # touching pair (video 1)
    c = _box(10, 20, 0, 10)  # video 2: split in two halves
    d = _box(10, 20, 30, 40)  # video 2: matched but wrong class
    e = _box(0, 4, 30, 34)  # video 2: missed
    f = _box(0, 5, 20, 25)  # video 3: poor mask
    gts = [(1, 1, a), (1, 1, b), (2, 2, c), (2, 3, d), (2, 1, e), (3, 2, f)]
    gt = {"videos": [{"id": v, "height": H, "width": W, "length": T} for v in (1, 2, 3)],
          "categories": [{"id": i, "name": str(i)} for i in (1, 2, 3)],
          "annotations": [{"id": i + 1, "video_id": v, "category_id": cat, "segmentations": track_rles(m),
                           "areas": [int(m[t].sum()) or None for t in range(T)]}
                          for i, (v, cat, m) in enumerate(gts)]}
    res = [
        {"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": track_rles(a | b | _box(0, 10, 20, 22))},  # merge
        {"video_id": 2, "category_id": 2, "score": 0.8, "segmentations": track_rles(_box(10, 20, 0, 4))},  # split ...
        {"video_id": 2, "category_id": 2, "score": 0.7, "segmentations": track_rles(_box(10, 20, 4, 8))},  # ... in two
        {"video_id": 2, "category_id": 1, "score": 0.9, "segmentations": track_rles(d)},  # d as class 1 ...
        {"video_id": 2, "category_id": 3, "score": 0.2, "segmentations": track_rles(d)},  # ... its top-2 class counts once
        {"video_id": 3, "category_id": 2, "score": 0.6, "segmentations": track_rles(_box(0, 15, 15, 30))},  # poor
        {"video_id": 3, "category_id": 2, "score": 0.5, "segmentations": track_rles(_box(15, 20, 35, 40))},  # FP
        {"video_id": 3, "category_id": 2, "score": 0.05, "segmentations": track_rles(_box(15, 20, 0, 5))},  # below threshold
    ]
    return gt, res, gts


def test_each_error_kind_and_the_confusion_matrix():
    gt, res, gts = _case()
    d = diagnose_ytvis(gt, res)
    assert d.errors == {"merged": 2, "split": 1, "missed": 1, "poor_mask": 1}
    assert d.matched == 1 and d.confusion[2, 0] == 1  # category 3 predicted as 1 (its best score)
    assert d.confusion[:, -1].sum() == 5 and d.confusion.sum() == 6
    np.testing.assert_allclose(d.best_iou, [100 / 220, 100 / 220, 0.4, 1.0, 0.0, 25 / 225])
    assert d.false_positives == 1 + 2 + 1 + 1  # the merge, both pieces, the poor mask's blob, the stray box
    # foreground: union of ground truth vs union of predictions scoring >= 0.1, pixels over the split
    inter = 2 * (200 + 80 + 100 + 25)  # per frame: a and b; 8 of c's 10 columns; d; f inside the blob
    gt_fg = 2 * (200 + 100 + 100 + 16 + 25)
    pred_fg = 2 * (220 + 80 + 100 + 225 + 25)
    assert d.foreground_iou == pytest.approx(inter / (gt_fg + pred_fg - inter))
    s = d.summary()
    assert s["tracks"] == 6 and s["missed"] == 1 and s["class accuracy of matched"] == 0.0


def test_perfect_predictions_have_no_errors():
    gt, _, gts = _case()
    res = [{"video_id": v, "category_id": c, "score": 1.0, "segmentations": track_rles(m)} for v, c, m in gts]
    d = diagnose_ytvis(gt, res)
    assert d.matched == 6 and np.trace(d.confusion) == 6 and d.false_positives == 0
    assert d.foreground_iou == 1.0 and sum(d.errors.values()) == 0


def test_a_result_for_an_unknown_video_is_named():
    gt, res, _ = _case()
    res[0]["video_id"] = 9
    with pytest.raises(TagvisError, match=r"\[0\]\.video_id.*9"):
        diagnose_ytvis(gt, res)


def test_bad_entries_are_named_before_decoding_and_unknown_categories_left_out():
    import warnings

    from tagvis_lib.errors import DataFormatError, DataWarning

    gt, res, _ = _case()
    bad = [dict(r) for r in res]
    bad[0] = {**bad[0], "segmentations": [{"size": s["size"], "counts": "garbage!!"} if s else s
                                          for s in bad[0]["segmentations"]]}
    with pytest.raises(DataFormatError, match=r"\[0\]\.segmentations\[\d+\]\.counts"):
        diagnose_ytvis(gt, bad)
    extra = res + [{**res[0], "category_id": 987}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = diagnose_ytvis(gt, extra)
    assert any(issubclass(w.category, DataWarning) and "987" in str(w.message) for w in caught)
    want = diagnose_ytvis(gt, res)
    assert got.errors == want.errors and got.false_positives == want.false_positives
    np.testing.assert_array_equal(got.confusion, want.confusion)
