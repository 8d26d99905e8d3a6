"""The textured style: natural textures, the properties issue 12 asks for, and both layouts with a test split."""
import json

import numpy as np
import pytest

from tagvis_lib.data import DAVISDataset, YTVISDataset, make_video, write_benchmark
from tagvis_lib.data.synth import CATEGORIES
from tagvis_lib.data.textured import BACKGROUND_TEXTURES, OBJECT_TEXTURES, TEXTURE_FILES, texture_pool

pytest.importorskip("skimage")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def videos():
    return [make_video("train", i, 0, 60, 108, style="textured") for i in range(24)]


def test_texture_pool_holds_every_listed_photograph():
    pool = texture_pool()
    assert len(pool) == len(TEXTURE_FILES)
    assert all(im.ndim == 3 and im.shape[2] == 3 and max(im.shape[:2]) <= 320 and im.std() > 10 for im in pool)


def test_categories_and_scenes_take_their_surfaces_from_photographs_of_their_own():
    used = [i for c in CATEGORIES for i in OBJECT_TEXTURES[c["name"]]] + list(BACKGROUND_TEXTURES)
    assert sorted(used) == list(range(len(TEXTURE_FILES)))  # each photograph in exactly one role
    assert all(len(OBJECT_TEXTURES[c["name"]]) >= 2 for c in CATEGORIES)  # instances of a category differ


def test_videos_have_the_properties_of_the_style(videos):
    empty = np.concatenate([~v.present.any(axis=0) for v in videos])
    assert 0.08 < empty.mean() < 0.4  # frames without objects
    assert all(v.present[:, 0].any() for v in videos)  # frame 0 never empty (DAVIS takes its objects there)
    sizes = {v.frames.shape[1:3] for v in videos}
    assert len(sizes) > 5 and all(h <= 60 and w <= 108 and h % 2 == 0 == w % 2 for h, w in sizes)
    lengths = [len(v.frames) for v in videos]
    assert min(lengths) < 32 and max(lengths) > 64
    assert any((v.occlusion > 0.3).any() for v in videos)
    returns = [np.diff(v.present.astype(int), axis=1) for v in videos]  # leaves and comes back
    assert any(((d == -1).any(axis=1) & (d == 1).any(axis=1) & v.present[:, 0]).any() for d, v in zip(returns, videos))
    scale = np.concatenate([v.radius[:, -1] / v.radius[:, 0] for v in videos])
    assert scale.max() > 1.5 and scale.min() < 1 / 1.5


def test_same_category_instances_touch(videos):
    from scipy import ndimage

    touching = 0
    for v in videos:
        for j in range(len(v.categories)):
            for k in range(j):
                if v.categories[j] == v.categories[k]:
                    grown = ndimage.binary_dilation(v.masks[j], structure=np.ones((1, 3, 3), bool))
                    touching += int((grown & v.masks[k]).any(axis=(1, 2)).sum() >= 5)
    assert touching >= 3


def test_colour_does_not_give_the_category(videos):
    # a nearest-centroid classifier on each instance's mean visible colour is near chance
    feats, cats = [], []
    for v in videos:
        for k, cat in enumerate(v.categories.tolist()):
            pixels = v.frames[v.masks[k]]
            feats.append(pixels.reshape(-1, 3).mean(0)), cats.append(cat)
    feats, cats = np.array(feats), np.array(cats)
    correct = 0
    for i in range(len(cats)):  # leave-one-out
        keep = np.arange(len(cats)) != i
        centroids = {c: feats[keep][cats[keep] == c].mean(0) for c in set(cats[keep].tolist())}
        correct += min(centroids, key=lambda c: np.linalg.norm(feats[i] - centroids[c])) == cats[i]
    assert correct / len(cats) < 0.45, correct / len(cats)  # 5 categories: chance 0.2; the simple style gives ~1


def test_textured_benchmark_in_both_layouts_with_a_test_split(tmp_path):
    paths = write_benchmark(tmp_path, n_train=2, n_valid=1, n_test=2, seed=1, height=40, width=64, style="textured")
    data = json.loads(paths["ytvis_test"].read_text())
    assert data["info"]["style"] == "textured" and len(data["videos"]) == 2
    drawn = [make_video("test", i, 1, 40, 64, style="textured") for i in range(2)]
    for sample, video, entry in zip(YTVISDataset(paths["ytvis"], "test"), drawn, data["videos"]):
        assert (entry["height"], entry["width"]) == video.frames.shape[1:3]
        np.testing.assert_array_equal(sample.masks, video.masks)
        np.testing.assert_array_equal(sample.categories, video.categories)
    assert paths["davis_test-dev"].read_text().split() == [v.name for v in drawn]
    for sample, video in zip(DAVISDataset(paths["davis"], "test-dev"), drawn):
        np.testing.assert_array_equal(sample.masks, video.masks)


def test_unknown_style_is_refused(tmp_path):
    with pytest.raises(ValueError, match="style"):
        write_benchmark(tmp_path, n_train=1, n_valid=0, style="photoreal")
