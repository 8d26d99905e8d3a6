"""Clip sampling (training and inference), interpolation sources, and augmentation alignment."""
import numpy as np
import pytest

from tagvis_lib.data.clips import (
    AugmentParams,
    augment_clip,
    draw_augment_params,
    inference_indices,
    interpolation_sources,
    sample_train_indices,
)


@pytest.mark.parametrize("num_frames", [32, 33, 36, 50, 64, 100, 160, 187, 188, 300])
def test_training_clip_keeps_order_and_drops_runs_of_1_to_5(num_frames):
    for seed in range(20):
        clip = sample_train_indices(num_frames, 32, np.random.default_rng(seed))
        idx = clip.indices
        assert idx.shape == (32,) and clip.valid.all()
        assert idx[0] >= 0 and idx[-1] < num_frames
        assert (np.diff(idx) >= 1).all()  # order kept, no repeats
        assert all(1 <= length <= 5 for _, length in clip.drops)
        # the drops are exactly the frames missing inside the clip's span, one run per gap
        gaps = [(int(a) + 1, int(b - a - 1)) for a, b in zip(idx[:-1], idx[1:]) if b - a > 1]
        assert gaps == clip.drops
        # drops go on until the video is used up or every one of the 31 gaps holds a run
        assert idx[-1] - idx[0] + 1 == num_frames or len(clip.drops) == 31


def test_training_clips_differ_between_draws_and_respect_drop_bounds():
    clips = {tuple(sample_train_indices(80, 32, np.random.default_rng(s)).indices) for s in range(10)}
    assert len(clips) == 10
    clip = sample_train_indices(100, 16, np.random.default_rng(0), min_drop=2, max_drop=3)
    assert clip.drops and all(2 <= n <= 3 for _, n in clip.drops)
    same = sample_train_indices(100, 16, np.random.default_rng(0), min_drop=2, max_drop=3)
    np.testing.assert_array_equal(clip.indices, same.indices)


def test_short_videos_pad_or_loop():
    pad = sample_train_indices(5, 8, np.random.default_rng(0), short_video="pad")
    np.testing.assert_array_equal(pad.indices, [0, 1, 2, 3, 4, 4, 4, 4])
    np.testing.assert_array_equal(pad.valid, [True] * 5 + [False] * 3)
    loop = sample_train_indices(4, 10, np.random.default_rng(0), short_video="loop")
    np.testing.assert_array_equal(loop.indices, [0, 1, 2, 3, 2, 1, 0, 1, 2, 3])
    assert loop.valid.all() and not loop.drops
    assert sample_train_indices(1, 3, np.random.default_rng(0), short_video="loop").indices.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="short_video"):
        sample_train_indices(4, 10, np.random.default_rng(0), short_video="stretch")


def test_inference_indices_spread_and_pad():
    idx, valid = inference_indices(100, 32)
    assert idx[0] == 0 and idx[-1] == 99 and (np.diff(idx) >= 3).all() and valid.all()
    for length in range(32, 200):
        idx, _ = inference_indices(length, 32)
        assert (np.diff(idx) >= 1).all() and np.ptp(np.diff(idx)) <= 1
    idx, valid = inference_indices(20, 32)
    np.testing.assert_array_equal(idx, np.minimum(np.arange(32), 19))
    assert valid.sum() == 20 and valid[:20].all()


def test_interpolation_sources_map_every_frame_to_its_processed_neighbours():
    idx, _ = inference_indices(10, 4)  # frames 0, 3, 6, 9
    prev, nxt, weight = interpolation_sources(10, idx)
    np.testing.assert_array_equal(prev, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
    np.testing.assert_array_equal(nxt, [0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    np.testing.assert_allclose(weight, [0, 1 / 3, 2 / 3, 0, 1 / 3, 2 / 3, 0, 1 / 3, 2 / 3, 0])
    idx, _ = inference_indices(3, 5)  # padded: 0 1 2 2 2
    prev, nxt, weight = interpolation_sources(3, idx)
    np.testing.assert_array_equal(prev, [0, 1, 2]) and np.testing.assert_array_equal(nxt, [0, 1, 2])
    prev, nxt, weight = interpolation_sources(6, np.array([2, 4]))  # frames outside the processed range
    np.testing.assert_array_equal(prev, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(nxt, [0, 0, 0, 1, 1, 1])


# palette: label -> colour, far apart so bilinear resampling cannot confuse two labels
PALETTE = np.array([[0, 0, 0], [250, 0, 0], [0, 250, 0], [0, 0, 250], [250, 250, 0]], np.uint8)


def _coded_clip(rng, t=6, h=60, w=90):
    labels = np.zeros((t, h, w), np.int64)
    for k in range(1, 5):
        for f in range(t):
            y, x = rng.integers(0, h - 20), rng.integers(0, w - 25)
            labels[f, y:y + 20, x:x + 25] = k
    return PALETTE[labels], labels


def _interior(labels, r=2):
    """Pixels whose (2r+1)^2 neighbourhood holds one label."""
    t, h, w = labels.shape
    pad = np.pad(labels, ((0, 0), (r, r), (r, r)), mode="edge")
    same = np.ones_like(labels, bool)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            same &= pad[:, dy:dy + h, dx:dx + w] == labels
    return same


def test_augmentation_keeps_masks_aligned_with_frames():
    rng = np.random.default_rng(0)
    for _ in range(12):
        frames, labels = _coded_clip(rng)
        valid = np.arange(6) < 4
        params = draw_augment_params(rng, 60, 90, crop_scale_min=0.5, hflip_prob=0.5, tflip_prob=0.5)
        out, lab, val = augment_clip(frames, labels, valid, params, (36, 56))
        assert out.shape == (6, 3, 36, 56) and lab.shape == (6, 36, 56) and out.dtype.is_floating_point
        lab = lab.numpy()
        inside = _interior(lab)
        colours = out.permute(0, 2, 3, 1).numpy()
        assert inside.mean() > 0.3
        assert np.abs(colours[inside] - PALETTE[lab[inside]]).max() < 40
        np.testing.assert_array_equal(val.numpy(), valid[::-1] if params.tflip else valid)


def test_flips_and_crop_do_what_they_say():
    rng = np.random.default_rng(1)
    frames, labels = _coded_clip(rng)
    valid = np.ones(6, bool)
    size = (60, 90)
    plain, lab0, _ = augment_clip(frames, labels, valid, AugmentParams((0, 0, 60, 90), False, False), size)
    np.testing.assert_array_equal(lab0.numpy(), labels)  # identity without crop
    _, lab_t, _ = augment_clip(frames, labels, valid, AugmentParams((0, 0, 60, 90), False, True), size)
    np.testing.assert_array_equal(lab_t.numpy(), labels[::-1])  # temporal flip reverses
    out_h, lab_h, _ = augment_clip(frames, labels, valid, AugmentParams((0, 0, 60, 90), True, False), size)
    np.testing.assert_array_equal(lab_h.numpy(), labels[:, :, ::-1])
    np.testing.assert_allclose(out_h.numpy(), plain.numpy()[:, :, :, ::-1])
    _, lab_c, _ = augment_clip(frames, labels, valid, AugmentParams((10, 20, 30, 45), False, False), (30, 45))
    np.testing.assert_array_equal(lab_c.numpy(), labels[:, 10:40, 20:65])
    for seed in range(20):
        top, left, ch, cw = draw_augment_params(np.random.default_rng(seed), 60, 90, 0.7, 0.5, 0.5).crop
        assert 0.69 <= ch / 60 <= 1 and abs(ch / 60 - cw / 90) < 0.02
        assert top + ch <= 60 and left + cw <= 90
