"""FrameCache: training clips equal to those decoded afresh, within the byte budget, frames read once."""
import dataclasses

import numpy as np
import pytest
import torch

from tagvis_lib.config import DataConfig, apply_overrides, profile_config
from tagvis_lib.data import DAVISDataset, YTVISDataset
from tagvis_lib.data.clips import check_data_config
from tagvis_lib.data.frame_cache import FrameCache
from tagvis_lib.data.torch_dataset import ClipDataset

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CFG = DataConfig(clip_length=8, height=24, width=40)


class CountingLoads:
    """A dataset whose ``load`` counts the frames it decodes."""

    def __init__(self, dataset):
        self.dataset, self.decoded = dataset, 0

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def load(self, i, frame_indices):
        self.decoded += len(np.unique(frame_indices))
        return self.dataset.load(i, frame_indices)


def _items_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if torch.is_tensor(a[key]):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("layout", ["ytvis", "davis"])
@pytest.mark.parametrize("budget_mb", [64, 1])  # everything held / full after a few frames
def test_cached_clips_equal_fresh_ones_over_epochs(synth_benchmark, layout, budget_mb):
    videos = (YTVISDataset(synth_benchmark["ytvis"], "train") if layout == "ytvis"
              else DAVISDataset(synth_benchmark["davis"], "train"))
    cached = ClipDataset(videos, dataclasses.replace(CFG, frame_cache_mb=budget_mb), seed=3)
    fresh = ClipDataset(videos, CFG, seed=3)
    assert fresh.cache is None and cached.cache is not None
    for epoch in range(4):
        cached.set_epoch(epoch), fresh.set_epoch(epoch)
        for i in range(len(videos)):
            _items_equal(cached[i], fresh[i])
    assert 0 < cached.cache.used <= cached.cache.budget == budget_mb << 20


def test_sample_equals_the_datasets_load_for_repeated_and_unordered_frames(synth_benchmark):
    videos = DAVISDataset(synth_benchmark["davis"], "train")
    cache = FrameCache(64 << 20)
    for indices in ([5, 2, 2, 9], [9, 2, 0, 0, 3]):  # the second call mixes held and new frames
        got, want = cache.load(videos, 0, np.array(indices)), videos.load(0, np.array(indices))
        for field in ("frames", "masks", "present", "void", "categories", "iscrowd", "instance_ids"):
            assert np.array_equal(getattr(got, field), getattr(want, field)), field
        assert got.frame_names == want.frame_names and got.video_id == want.video_id
        assert np.array_equal(got.meta["frame_indices"], indices)
    assert len(cache) == 5  # frames 0, 2, 3, 5, 9


def test_a_frame_is_decoded_once_while_the_budget_lasts(synth_benchmark):
    videos = CountingLoads(YTVISDataset(synth_benchmark["ytvis"], "train"))
    cache = FrameCache(64 << 20)
    cache.load(videos, 1, np.arange(6))
    cache.load(videos, 1, np.arange(3, 9))
    assert videos.decoded == 9
    empty = cache.load(videos, 2, np.zeros(0, np.int64))  # no frame: what the dataset gives
    assert empty.frames.shape[0] == 0 and empty.masks.shape[1] == 0 and videos.decoded == 9
    full = FrameCache(0)
    full.load(videos, 1, np.arange(6)), full.load(videos, 1, np.arange(6))
    assert videos.decoded == 9 + 12 and full.used == 0 and len(full) == 0


def test_only_training_clips_use_it_and_the_field_is_checked(synth_benchmark):
    videos = YTVISDataset(synth_benchmark["ytvis"], "train")
    assert ClipDataset(videos, dataclasses.replace(CFG, frame_cache_mb=8), train=False).cache is None
    assert profile_config("cpu").data.frame_cache_mb > 0 and profile_config("paper").data.frame_cache_mb == 0
    with pytest.raises(ValueError, match="data.frame_cache_mb"):
        check_data_config(apply_overrides(profile_config("smoke"), ["data.frame_cache_mb=-1"]))
