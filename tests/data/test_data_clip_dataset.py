"""ClipDataset and collate_clips: tensors of the contract, labels, determinism, DataLoader workers."""
import numpy as np
import pytest
import torch

from tagvis_lib.config import DataConfig
from tagvis_lib.constants import IGNORE_INDEX, KINETICS_MEAN, KINETICS_STD
from tagvis_lib.data import DAVISDataset, VideoSample, YTVISDataset
from tagvis_lib.data.torch_dataset import ClipDataset, collate_clips

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CFG = DataConfig(clip_length=8, height=24, width=40)


def _video(masks, categories, void=None, iscrowd=None, colour=(100, 150, 200)):
    n, t, h, w = masks.shape
    frames = np.empty((t, h, w, 3), np.uint8)
    frames[:] = colour
    return VideoSample(video_id="v", frames=frames, masks=masks, categories=np.array(categories, np.int64),
                       present=masks.any(axis=(2, 3)), frame_names=[str(i) for i in range(t)], void=void,
                       iscrowd=iscrowd)


def test_batch_has_the_contract_shapes_and_dtypes(synth_benchmark):
    dataset = ClipDataset(YTVISDataset(synth_benchmark["ytvis"], "train"), CFG, seed=0)
    batch = collate_clips([dataset[i] for i in range(3)])
    assert batch["frames"].shape == (3, 3, 8, 24, 40) and batch["frames"].dtype == torch.float32
    for key in ("instance_ids", "semantic"):
        assert batch[key].shape == (3, 8, 24, 40) and batch[key].dtype == torch.int64
    assert batch["valid"].shape == (3, 8) and batch["valid"].dtype == torch.bool
    assert batch["categories"].dtype == torch.int64 and batch["categories"].shape[0] == 3
    assert batch["video_id"] == [1, 2, 3]
    for b in range(3):
        ids, cats = batch["instance_ids"][b], batch["categories"][b]
        n = int((cats > 0).sum())
        assert (cats[n:] == 0).all() and ((cats[:n] >= 1) & (cats[:n] <= 5)).all()
        real = ids[ids != IGNORE_INDEX]
        assert set(real.unique().tolist()) <= set(range(n + 1))
        lut = torch.cat([torch.zeros(1, dtype=torch.int64), cats[:n]])
        np.testing.assert_array_equal(batch["semantic"][b][ids != IGNORE_INDEX], lut[real])
        assert (batch["semantic"][b][ids == IGNORE_INDEX] == IGNORE_INDEX).all()
        counts = torch.bincount(real, minlength=n + 1)[1:]
        assert (counts[:-1] >= counts[1:]).all()  # largest instance first


def test_frames_are_kinetics_normalised():
    ds = ClipDataset([_video(np.zeros((0, 4, 24, 40), bool), [])], CFG, train=False)
    frames = ds[0]["frames"]
    expected = (torch.tensor([100, 150, 200]) / 255 - torch.tensor(KINETICS_MEAN)) / torch.tensor(KINETICS_STD)
    torch.testing.assert_close(frames[:, 0, 5, 5], expected.float(), atol=1e-4, rtol=0)


def test_clips_depend_only_on_seed_epoch_and_index(synth_benchmark):
    videos = YTVISDataset(synth_benchmark["ytvis"], "train")
    a, b = ClipDataset(videos, CFG, seed=5), ClipDataset(videos, CFG, seed=5)
    b[1], b[0]  # earlier items do not change later ones
    for key in ("frames", "instance_ids", "frame_indices"):
        torch.testing.assert_close(a[2][key], b[2][key])
    first = a[2]["frame_indices"]
    a.set_epoch(1)
    assert a.epoch == 1 and not torch.equal(a[2]["frame_indices"], first)
    a.set_epoch(0)
    torch.testing.assert_close(a[2]["frame_indices"], first)


def test_dataloader_workers_give_the_same_batches(synth_benchmark):
    dataset = ClipDataset(DAVISDataset(synth_benchmark["davis"], "train"), CFG, seed=1)
    kwargs = {"batch_size": 2, "collate_fn": collate_clips}
    single = list(torch.utils.data.DataLoader(dataset, num_workers=0, **kwargs))
    loader = torch.utils.data.DataLoader(dataset, num_workers=2, persistent_workers=True, **kwargs)
    workers = list(loader)
    for x, y in zip(single, workers):
        torch.testing.assert_close(x["frames"], y["frames"])
        torch.testing.assert_close(x["instance_ids"], y["instance_ids"])
    dataset.set_epoch(3)  # reaches the persistent workers through shared memory
    later = list(loader)
    expected = [dataset[i]["frame_indices"] for i in range(len(dataset))]
    torch.testing.assert_close(torch.cat([b["frame_indices"] for b in later]), torch.stack(expected))


def test_padding_overlap_crowd_void_and_truncation():
    t, h, w = 5, 24, 40
    masks = np.zeros((4, t, h, w), bool)
    masks[0, :, :, :20] = True  # large
    masks[1, :, 4:10, 4:10] = True  # small, overlaps instance 0: wins there
    masks[2, :, 12:20, 24:34] = True  # crowd
    masks[3, :, 0:3, 30:40] = True  # smallest: beyond max_instances=2
    void = np.zeros((t, h, w), bool)
    void[:, 22:, :] = True
    video = _video(masks, [7, 7, 9, 9], void=void, iscrowd=np.array([False, False, True, False]))
    cfg = DataConfig(clip_length=8, height=h, width=w, max_instances=2, short_video="pad")
    item = ClipDataset([video], cfg, train=False)[0]
    ids, valid = item["instance_ids"], item["valid"]
    np.testing.assert_array_equal(valid.numpy(), [True] * 5 + [False] * 3)
    assert (ids[5:] == IGNORE_INDEX).all() and (item["semantic"][5:] == IGNORE_INDEX).all()
    real = ids[:5]
    assert (real[:, 4:10, 4:10] == 2).all()  # smaller instance on top, numbered after the larger
    assert (real[:, :10, 12:20] == 1).all()
    assert (real[:, 12:20, 24:34] == IGNORE_INDEX).all()  # crowd
    assert (real[:, 0:3, 30:40] == IGNORE_INDEX).all()  # truncated: neither instance nor background
    assert (real[:, 22:] == IGNORE_INDEX).all()  # void
    np.testing.assert_array_equal(item["categories"].numpy(), [7, 7])
