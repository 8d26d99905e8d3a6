"""Result files: YouTube-VIS JSON + zip, DAVIS palette PNGs, raw-video outputs."""
import json
import zipfile

import av
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from inference_helpers import Oracle, grey_video, oracle_config
from tagvis_lib.data.davis import davis_palette
from tagvis_lib.inference.export import (
    encode_track,
    paint_proposals,
    write_davis_sequence,
    write_video_outputs,
    write_ytvis_results,
    ytvis_entries,
)
from tagvis_lib.inference.predictor import predict_video

CATEGORIES = [{"id": 7, "name": "a"}, {"id": 9, "name": "b"}, {"id": 12, "name": "c"}, {"id": 20, "name": "d"},
              {"id": 31, "name": "e"}]


def test_encode_track_round_trip_and_null_for_empty_frames():
    rng = np.random.default_rng(0)
    masks = rng.random((4, 9, 13)) > 0.6
    masks[2] = False
    rles = encode_track(masks)
    assert rles[2] is None
    for t in (0, 1, 3):
        assert isinstance(rles[t]["counts"], str) and rles[t]["size"] == [9, 13]
        decoded = mask_utils.decode({"size": rles[t]["size"], "counts": rles[t]["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), masks[t])


@pytest.fixture(scope="module")
def prediction():
    frames, gt = grey_video([[(2, 2 + t, 10, 12 + t), (12, 16, 22, 30)] for t in range(5)])  # one box moves
    return frames, gt, predict_video(Oracle(), frames, oracle_config(clip_length=4, topk_classes=2), "cpu")


def test_ytvis_entries_and_files_round_trip(prediction, tmp_path):
    frames, gt, pred = prediction
    entries = ytvis_entries(pred, 42, CATEGORIES)
    assert len(entries) == 4
    for entry, m, c, s in zip(entries, pred.entry_instance, pred.classes, pred.scores):
        assert entry["video_id"] == 42 and entry["score"] == pytest.approx(float(s))
        assert entry["category_id"] == CATEGORIES[c - 1]["id"]
        decoded = np.stack([mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()}) for r in entry["segmentations"]])
        assert np.array_equal(decoded.astype(bool), pred.instance_masks[m])
    json_path, zip_path = write_ytvis_results(entries, tmp_path / "out" / "preds.json")
    assert json.loads(json_path.read_text()) == entries
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.namelist() == ["results.json"]
        assert json.loads(zf.read("results.json")) == entries
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["preds.json", "preds.zip"]  # no temp files left


def test_paint_proposals_ranks_by_score_and_keeps_higher_ranked_pixels():
    masks = np.zeros((3, 1, 4, 6), dtype=bool)
    masks[0, 0, :, :4] = True  # score 0.2, overlaps both others
    masks[1, 0, :2, 2:] = True  # score 0.9
    masks[2, 0, 2:, 3:] = True  # score 0.5
    labels = paint_proposals(masks, np.array([0.2, 0.9, 0.5]))
    expected = np.array([[3, 3, 1, 1, 1, 1], [3, 3, 1, 1, 1, 1], [3, 3, 3, 2, 2, 2], [3, 3, 3, 2, 2, 2]])
    assert np.array_equal(labels[0], expected)


def test_paint_proposals_keeps_at_most_twenty():
    masks = np.zeros((25, 5, 5), dtype=bool)
    for k in range(25):
        masks[k].flat[k] = True
    scores = np.arange(25, dtype=float)  # the last proposals are the best
    labels = paint_proposals(masks, scores)
    assert labels.max() == 20
    assert labels.flat[24] == 1 and labels.flat[5] == 20 and not labels.flat[:5].any()


def test_davis_sequence_pngs(prediction, tmp_path):
    frames, gt, pred = prediction
    names = [f"{t:05d}.jpg" for t in range(len(frames))]
    paths = write_davis_sequence(pred, tmp_path / "seq", names)
    assert [p.name for p in paths] == [f"{t:05d}.png" for t in range(len(frames))]
    order = np.argsort(-pred.instance_scores, kind="stable")
    for t, path in enumerate(paths):
        with Image.open(path) as image:
            assert image.mode == "P"
            assert image.getpalette()[:12] == davis_palette()[:12]
            labels = np.asarray(image)
        for rank, m in enumerate(order):
            assert np.array_equal(labels == rank + 1, pred.instance_masks[m, t])
    with pytest.raises(ValueError, match="frame names"):
        write_davis_sequence(pred, tmp_path / "bad", names[:-1])


def test_video_outputs(prediction, tmp_path):
    frames, gt, pred = prediction
    names = [f"{t:05d}" for t in range(len(frames))]
    out = write_video_outputs(frames, pred, tmp_path / "video", names, fps=5)
    pngs = sorted((tmp_path / "video" / "masks").iterdir())
    assert [p.name for p in pngs] == [f"{n}.png" for n in names]
    assert np.array_equal(np.asarray(Image.open(pngs[3])), pred.labels[3])
    with av.open(out["mp4"]) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == len(frames) and decoded[0].shape == frames[0].shape
    with Image.open(out["gif"]) as gif:
        assert gif.n_frames == len(frames)
