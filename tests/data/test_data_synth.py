"""The synthetic benchmark: readers give back exactly what the generator drew; formats are standard."""
import colorsys
import hashlib
import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from tagvis_lib.data import DAVISDataset, YTVISDataset, make_video, write_benchmark

from tagvis_lib.data.synth import CATEGORIES

# pycocotools under numpy 2 warns inside its own decode; nothing to act on here
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _drawn(split, count, args):
    return [make_video(split, i, args["seed"], args["height"], args["width"]) for i in range(count)]


@pytest.mark.parametrize("split", ["train", "valid"])
def test_ytvis_reader_returns_the_drawn_masks(synth_benchmark, split):
    args = synth_benchmark["args"]
    count = args[f"n_{split}"]
    dataset = YTVISDataset(synth_benchmark["ytvis"], split)
    assert len(dataset) == count
    for sample, video in zip(dataset, _drawn(split, count, args)):
        np.testing.assert_array_equal(sample.masks, video.masks)
        np.testing.assert_array_equal(sample.present, video.present)
        np.testing.assert_array_equal(sample.categories, video.categories)
        assert np.abs(sample.frames.astype(int) - video.frames).mean() < 6  # JPEG quality 95, no chroma subsampling
        assert sample.frame_names == [f"{video.name}/{5 * t:05d}.jpg" for t in range(len(video.frames))]


@pytest.mark.parametrize("split,davis_split", [("train", "train"), ("valid", "val")])
def test_davis_reader_returns_the_drawn_masks(synth_benchmark, split, davis_split):
    args = synth_benchmark["args"]
    dataset = DAVISDataset(synth_benchmark["davis"], davis_split)
    assert len(dataset) == args[f"n_{split}"]
    for sample, video in zip(dataset, _drawn(split, len(dataset), args)):
        np.testing.assert_array_equal(sample.masks, video.masks)
        assert not sample.void.any()
        # objects of frame 0 are labels 1..K0, later entrants come after (what the official eval counts)
        first = video.present[:, 0]
        assert sample.meta["first_frame_objects"] == first.sum() >= 1
        assert first[: first.sum()].all()
        png = synth_benchmark["davis"] / "Annotations_unsupervised" / "480p" / video.name / "00000.png"
        with Image.open(png) as image:
            assert image.mode == "P"


def test_ytvis_json_decodes_with_pycocotools_and_uses_both_rle_forms(synth_benchmark):
    data = json.loads(synth_benchmark["ytvis_train"].read_text())
    videos = {v["id"]: v for v in data["videos"]}
    kinds = set()
    for ann in data["annotations"]:
        video = videos[ann["video_id"]]
        assert len(ann["segmentations"]) == video["length"] == len(ann["areas"]) == len(ann["bboxes"])
        for seg, area, box in zip(ann["segmentations"], ann["areas"], ann["bboxes"]):
            assert (seg is None) == (area is None) == (box is None)
            if seg is None:
                continue
            kinds.add(type(seg["counts"]).__name__)
            rle = mask_utils.frPyObjects(seg, video["height"], video["width"]) if isinstance(seg["counts"], list) else seg
            mask = mask_utils.decode(rle)
            assert mask.shape == (video["height"], video["width"])
            assert mask.sum() == area > 0
    assert kinds == {"list", "str"}


def test_generation_is_deterministic_per_seed(tmp_path):
    def digest(root):
        files = sorted(p for p in root.rglob("*") if p.is_file())
        return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in files}

    a = write_benchmark(tmp_path / "a", n_train=2, n_valid=1, seed=3, height=32, width=48)
    b = write_benchmark(tmp_path / "b", n_train=2, n_valid=1, seed=3, height=32, width=48)
    c = write_benchmark(tmp_path / "c", n_train=2, n_valid=1, seed=4, height=32, width=48)
    assert digest(a["root"]) == digest(b["root"])
    assert digest(a["root"])["ytvis/train.json"] != digest(c["root"])["ytvis/train.json"]


def test_videos_exercise_what_the_method_is_for():
    videos = _drawn("train", 16, {"seed": 0, "height": 48, "width": 80})
    lengths = [len(v.frames) for v in videos]
    assert min(lengths) < 32 and max(lengths) > 64
    same = [len(v.categories) - len(set(v.categories.tolist())) > 0 for v in videos]
    assert np.mean(same) >= 0.4  # several instances of one category: common
    assert any((v.occlusion > 0.3).any() for v in videos)
    assert any((~v.present[:, 0] & v.present.any(axis=1)).any() for v in videos)  # enters late
    assert any((~v.present[:, -1] & v.present[:, 0]).any() for v in videos)  # leaves early
    scale = np.concatenate([v.radius[:, -1] / v.radius[:, 0] for v in videos])
    assert scale.max() > 1.5 and scale.min() < 1 / 1.5
    # textured background that moves: pixels no instance ever covers change over time
    v = videos[0]
    free = ~v.masks.any(axis=(0, 1))
    assert v.frames[0][free].std() > 5
    assert np.abs(v.frames[0].astype(int) - v.frames[-1])[free].mean() > 5
    # instances of one category differ in colour (per-instance jitter) but keep the category's hue family
    hues = {c["id"]: c["hue"] for c in CATEGORIES}
    for v in videos:
        for k, cat in enumerate(v.categories.tolist()):
            hue = colorsys.rgb_to_hsv(*(v.colours[k] / 255))[0]
            assert min(abs(hue - hues[cat]), 1 - abs(hue - hues[cat])) < 0.04
            for j in range(k):
                if v.categories[j] == cat:
                    assert np.abs(v.colours[j] - v.colours[k]).max() > 0.5
