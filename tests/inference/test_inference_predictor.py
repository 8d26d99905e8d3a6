"""predict_video: whole videos, padding, interpolation, top-k entries, overlapping clips, warm-up."""
import numpy as np
import pytest
import torch

from inference_helpers import STILL_BOXES, Oracle, grey_video, oracle_config
from tagvis_lib.inference.predictor import predict_video
from tagvis_lib.inference.rendering import temporal_coverage


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def match_gt(pred, gt: np.ndarray) -> dict[int, int]:
    """Instance m -> ground-truth label of its best IoU, asserting every instance matches one exactly."""
    found = {}
    for m, mask in enumerate(pred.instance_masks):
        found[m] = max(range(1, gt.max() + 1), key=lambda g: iou(mask, gt == g))
    return found


@pytest.mark.parametrize("length,clip", [(12, 8), (5, 8), (8, 8)])
def test_still_objects_recovered_with_class_and_every_frame(length, clip):
    frames, gt = grey_video([STILL_BOXES] * length)
    pred = predict_video(Oracle(), frames, oracle_config(clip_length=clip), "cpu")
    assert pred.labels.shape == gt.shape  # padded frames never reach the output
    assert pred.masks.shape == (2, *gt.shape)
    found = match_gt(pred, gt)
    assert sorted(found.values()) == [1, 2]
    for m, g in found.items():
        assert np.array_equal(pred.instance_masks[m], gt == g)
        assert pred.classes[pred.entry_instance == m].tolist() == [g]
    assert (np.diff(pred.scores) <= 0).all() and (pred.scores > 0.9).all()
    assert pred.timing["frames"] == length and pred.timing["network_frames"] == min(length, clip)
    assert pred.timing["network_fps"] > 0 and pred.timing["video_fps"] > 0
    assert pred.timing["precision"] == "fp32"


def test_short_video_padding_never_reaches_output():
    # the object appears only in the last real frame: padding repeats it, the output must not grow
    boxes = [[None]] * 3 + [[(4, 4, 12, 12)]]
    frames, gt = grey_video(boxes)
    pred = predict_video(Oracle(), frames, oracle_config(clip_length=8, min_pixels=1), "cpu")
    assert pred.labels.shape[0] == 4
    assert pred.num_instances == 1
    assert np.array_equal(pred.instance_masks[0], gt == 1)
    assert list(pred.tags.frame_indices) == [0, 1, 2, 3]


@pytest.mark.parametrize("interpolation", ["nearest", "linear"])
def test_unprocessed_frame_interpolated_from_neighbours(interpolation):
    # 3 frames, clip of 2: frames 0 and 2 are processed, frame 1 lies halfway between them
    a, b = (4, 4, 14, 14), (8, 8, 18, 18)
    frames, gt = grey_video([[a], [(0, 0, 1, 1)], [b]])
    pred = predict_video(Oracle(), frames, oracle_config(clip_length=2, interpolation=interpolation), "cpu")
    assert pred.timing["network_frames"] == 2
    mask = pred.instance_masks[0]
    assert np.array_equal(mask[0], gt[0] == 1) and np.array_equal(mask[2], gt[2] == 1)
    if interpolation == "nearest":  # a tie goes to the later neighbour
        assert np.array_equal(mask[1], gt[2] == 1)
    else:  # blend 0.5 / 0.5 of two soft masks, threshold 0.5: the pixels both agree on
        assert np.array_equal(mask[1], (gt[0] == 1) & (gt[2] == 1))


def test_linear_interpolation_follows_the_nearer_neighbour_off_centre():
    a, b = (4, 4, 14, 14), (8, 8, 18, 18)
    frames, gt = grey_video([[a], [a], [b], [b]])  # clip of 2 on 4 frames: frames 0 and 3
    pred = predict_video(Oracle(), frames, oracle_config(clip_length=2, interpolation="linear"), "cpu")
    mask = pred.instance_masks[0]
    assert np.array_equal(mask[1], gt[0] == 1) and np.array_equal(mask[2], gt[3] == 1)


def test_topk_emits_k_entries_per_mask():
    frames, gt = grey_video([STILL_BOXES] * 6)
    pred = predict_video(Oracle(), frames, oracle_config(clip_length=4, topk_classes=3), "cpu")
    assert len(pred.classes) == 3 * pred.num_instances == 6
    masks = pred.masks
    for m in range(pred.num_instances):
        entries = np.flatnonzero(pred.entry_instance == m)
        assert len(entries) == 3 and len(set(pred.classes[entries])) == 3
        assert all(np.array_equal(masks[e], pred.instance_masks[m]) for e in entries)
        assert pred.scores[entries[0]] > pred.scores[entries[1]]  # the voted class first
    assert (np.diff(pred.scores) <= 0).all()


def test_temporal_coverage_counts_frames_with_pixels():
    labels = torch.zeros(4, 3, 5, dtype=torch.uint8)
    labels[0, 0, 0] = 1  # instance 0: one pixel in frame 0
    labels[:, 2, 1:4] = 2  # instance 1: every frame
    labels[3, 1, 1] = 1
    assert temporal_coverage(labels, 3).tolist() == [0.5, 1.0, 0.0]  # instance 2 never appears


@pytest.mark.parametrize("coverage_score", [False, True])
def test_coverage_score_scales_each_score_by_the_frames_its_mask_covers(coverage_score):
    big, small = STILL_BOXES[1], (2, 2, 6, 6)
    # instance 1 (small) is in 2 of 8 frames; instance 2 (big) in all 8
    frames, gt = grey_video([[small if t < 2 else None, big] for t in range(8)])
    plain = predict_video(Oracle(), frames, oracle_config(clip_length=8), "cpu")
    pred = predict_video(Oracle(), frames, oracle_config(clip_length=8, coverage_score=coverage_score), "cpu")
    assert [sorted(g for g in match_gt(p, gt).values()) for p in (plain, pred)] == [[1, 2], [1, 2]]
    short = next(m for m, g in match_gt(pred, gt).items() if g == 1)
    expected = plain.scores[plain.entry_instance == short][0] * (0.25 if coverage_score else 1.0)
    assert pred.scores[pred.entry_instance == short][0] == pytest.approx(expected, rel=1e-6)
    persistent = pred.scores[pred.entry_instance != short][0]
    assert persistent == pytest.approx(plain.scores[plain.entry_instance != short][0], rel=1e-6)  # coverage 1
    if coverage_score:
        assert pred.entry_instance[-1] == short and pred.scores[-1] < persistent


def test_frames_are_resized_and_masks_returned_at_frame_size():
    frames, gt = grey_video([STILL_BOXES] * 4, height=48, width=64)
    frames = np.repeat(np.repeat(grey_video([STILL_BOXES] * 4)[0], 2, axis=1), 2, axis=2)  # boxes scaled by 2
    gt = np.repeat(np.repeat(grey_video([STILL_BOXES] * 4)[1], 2, axis=1), 2, axis=2)
    pred = predict_video(Oracle(), frames, oracle_config(height=24, width=32, clip_length=4), "cpu")
    assert pred.labels.shape == (4, 48, 64)
    for m, g in match_gt(pred, gt).items():
        assert iou(pred.instance_masks[m], gt == g) > 0.9


@pytest.mark.parametrize("clip_offset", [0.0, 10.0])
def test_overlapping_clips_link_moving_objects(clip_offset):
    length = 30
    boxes = [[(2, t // 2, 10, t // 2 + 8), (14, 28 - t // 2 - 4, 22, 28 - t // 2 + 4)] for t in range(length)]
    frames, gt = grey_video(boxes, width=40)
    model = Oracle(clip_offset=clip_offset)
    cfg = oracle_config(width=40, clip_length=8, long_video="overlapping", clip_overlap=3)
    pred = predict_video(model, frames, cfg, "cpu")
    assert pred.timing["clips"] == model.calls == 6
    assert pred.num_instances == 2  # linked into one track per object despite tags shifting per clip
    for m, g in match_gt(pred, gt).items():
        assert np.array_equal(pred.instance_masks[m], gt == g)


def test_video_without_foreground_gives_no_instance():
    frames, _ = grey_video([[]] * 6)
    pred = predict_video(Oracle(), frames, oracle_config(clip_length=4, topk_classes=2), "cpu")
    assert pred.num_instances == 0 and pred.masks.shape == (0, 6, 24, 32)
    assert len(pred.classes) == len(pred.scores) == len(pred.entry_instance) == 0
    assert not pred.labels.any()


def test_warmup_runs_and_training_flag_restored():
    frames, _ = grey_video([STILL_BOXES] * 5)
    model = Oracle().train()
    predict_video(model, frames, oracle_config(clip_length=4), "cpu", warmup_runs=3)
    assert model.calls == 4 and model.training
    with pytest.raises(ValueError, match="uint8"):
        predict_video(model, frames.astype(np.float32), oracle_config(), "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("long_video", ["single_clip", "overlapping"])
def test_cuda_gives_the_cpu_result(long_video):
    boxes = [[(2, t // 2, 10, t // 2 + 8), (14, 20, 22, 28)] for t in range(20)]
    frames, _ = grey_video(boxes)
    cfg = oracle_config(clip_length=8, long_video=long_video, clip_overlap=3, interpolation="linear")
    cpu = predict_video(Oracle(), frames, cfg, "cpu")
    gpu = predict_video(Oracle(), frames, cfg, "cuda")
    assert np.array_equal(cpu.labels, gpu.labels) and np.array_equal(cpu.classes, gpu.classes)
    assert np.allclose(cpu.scores, gpu.scores, atol=1e-5)


class RightBlind(Oracle):
    """The oracle, but the right half of every frame reads as sure background."""

    def forward(self, x: torch.Tensor):
        out = super().forward(x)
        logits = out.logits.clone()
        half = x.shape[-1] // 2
        logits[..., half:] = -8.0
        logits[:, 0, ..., half:] = 8.0
        return type(out)(out.tags, logits)


@pytest.mark.parametrize("flip_average", [False, True])
def test_flip_average_means_the_class_probabilities_of_both_passes(flip_average):
    left, right = (4, 2, 14, 12), (8, 20, 18, 30)  # instance 1 left of the middle column, 2 right of it
    frames, gt = grey_video([[left, right]] * 4)
    model = RightBlind()
    # foreground where P(background) < 0.6: the mean of a sure and a blind pass (0.5) passes
    cfg = oracle_config(clip_length=4, flip_average=flip_average, foreground_threshold=0.4)
    pred = predict_video(model, frames, cfg, "cpu")
    assert model.calls == (2 if flip_average else 1)
    assert pred.timing["network_frames"] == (8 if flip_average else 4)
    found = match_gt(pred, gt)
    assert sorted(found.values()) == ([1, 2] if flip_average else [1])
    for m, g in found.items():
        assert np.array_equal(pred.instance_masks[m], gt == g)
        assert pred.classes[pred.entry_instance == m].tolist() == [g]


def test_flip_average_leaves_a_mirror_symmetric_network_unchanged():
    frames, _ = grey_video([STILL_BOXES] * 4)
    plain = predict_video(Oracle(), frames, oracle_config(clip_length=4), "cpu")
    both = predict_video(Oracle(), frames, oracle_config(clip_length=4, flip_average=True), "cpu")
    assert np.array_equal(plain.labels, both.labels)
    assert np.allclose(plain.scores, both.scores)


class TagBlindUnmirrored(Oracle):
    """The oracle, but its unmirrored passes (even calls) tag every pixel 0."""

    def forward(self, x: torch.Tensor):
        blind = self.calls % 2 == 0
        out = super().forward(x)
        return type(out)(torch.zeros_like(out.tags), out.logits) if blind else out


@pytest.mark.parametrize("flip_tags", [False, True])
def test_flip_tags_groups_on_the_tags_of_both_passes(flip_tags):
    frames, gt = grey_video([STILL_BOXES] * 4)
    cfg = oracle_config(clip_length=4, flip_average=True, flip_tags=flip_tags)
    pred = predict_video(TagBlindUnmirrored(), frames, cfg, "cpu")
    assert pred.instance_tags.shape[1] == (2 if flip_tags else 1)
    if not flip_tags:  # one tag for both objects: one instance
        assert pred.num_instances == 1 and np.array_equal(pred.instance_masks[0], gt > 0)
        return
    found = match_gt(pred, gt)  # (0, 3k) / sqrt(2): the mirrored pass keeps them 2.1 apart
    assert sorted(found.values()) == [1, 2]
    for m, g in found.items():
        assert np.array_equal(pred.instance_masks[m], gt == g)
        assert np.allclose(pred.instance_tags[m], [0.0, 3.0 * g / np.sqrt(2.0)])


def test_flip_tags_keeps_the_distances_of_passes_that_agree():
    frames, _ = grey_video([STILL_BOXES] * 4)
    plain = predict_video(Oracle(), frames, oracle_config(clip_length=4, flip_average=True), "cpu")
    both = predict_video(Oracle(), frames, oracle_config(clip_length=4, flip_average=True, flip_tags=True), "cpu")
    assert np.array_equal(plain.labels, both.labels)
    assert np.allclose(plain.scores, both.scores)
    assert np.allclose(both.instance_tags, np.repeat(plain.instance_tags, 2, axis=1) / np.sqrt(2.0))


@pytest.mark.parametrize("overrides,needs", [({"flip_tags": True}, "flip_average=true"),
                                             ({"flip_tags": True, "flip_average": True, "grouping": "histogram"}, "histogram")])
def test_flip_tags_refused_where_it_cannot_work(overrides, needs):
    frames, _ = grey_video([STILL_BOXES] * 4)
    with pytest.raises(ValueError, match=f"inference.flip_tags: .*{needs}"):
        predict_video(Oracle(), frames, oracle_config(clip_length=4, **overrides), "cpu")
