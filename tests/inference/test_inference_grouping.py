"""Tag grouping: exact recovery of separated instances, graceful degradation, class vote and score."""
import math

import numpy as np
import pytest
import torch

from tagvis_lib.config import apply_overrides, profile_config
from tagvis_lib.inference.grouping import check_inference_config, group_clip, group_tags

G = 3.0  # the margin; bandwidth defaults to G / 2
METHODS_1D = ["meanshift", "histogram", "seed_grow"]
METHODS_ND = ["meanshift", "seed_grow"]


def separated_tags(dim: int, sizes: list[int], noise: float, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Tags (N, D) of len(sizes) instances whose centres are at least G apart, and their labels (N,)."""
    rng = np.random.default_rng(seed)
    if dim == 1:
        centres = (np.arange(len(sizes)) * G - 5.0)[:, None]
    else:
        lattice = np.stack(np.meshgrid(*[np.arange(3)] * dim, indexing="ij"), -1).reshape(-1, dim) * G
        centres = lattice[rng.permutation(len(lattice))[: len(sizes)]] + rng.normal(0, 0.1, dim)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    tags = centres[labels] + rng.normal(0, noise, (len(labels), dim))
    return torch.tensor(tags, dtype=torch.float32), labels


def background_probs(num_classes: int, T: int, h: int, w: int) -> torch.Tensor:
    """Class probabilities (C+1, T, h, w) that are background everywhere."""
    probs = torch.zeros(num_classes + 1, T, h, w)
    probs[0] = 1.0
    return probs


def paint(probs: torch.Tensor, cls: int, where: tuple) -> None:
    """Make the (T, h, w) region ``where`` certain foreground of class ``cls``."""
    probs[(0, *where)] = 0.0
    probs[(cls, *where)] = 1.0


def same_partition(assign: np.ndarray, labels: np.ndarray) -> bool:
    pairs = set(zip(assign.tolist(), labels.tolist()))
    return len(pairs) == len(set(labels.tolist())) == len(set(assign.tolist()))


@pytest.mark.parametrize("method,dim", [(m, 1) for m in METHODS_1D] + [(m, 3) for m in METHODS_ND])
def test_separated_instances_are_recovered_exactly(method, dim):
    sizes = [40, 3000, 250, 12, 900, 60]
    tags, labels = separated_tags(dim, sizes, noise=0.05 * G)
    assign, modes = group_tags(tags, method, bandwidth=G / 2, min_pixels=1)
    assert len(modes) == len(sizes)
    assert (assign >= 0).all()
    assert same_partition(assign.numpy(), labels)


@pytest.mark.parametrize("method,dim", [(m, 1) for m in METHODS_1D] + [(m, 3) for m in METHODS_ND])
def test_modes_sit_on_the_instance_centres(method, dim):
    tags, labels = separated_tags(dim, [500, 500, 500], noise=0.02 * G, seed=1)
    assign, modes = group_tags(tags, method, bandwidth=G / 2)
    for k in range(3):
        centre = tags[torch.as_tensor(labels == k)].mean(0)
        assert torch.cdist(centre[None], modes).min() < 0.15


def clip_inputs(tags: torch.Tensor, labels: np.ndarray, num_classes: int = 3, shape=(4, 10, 25)):
    """Place N = prod(shape) tags (N, D) into a clip: tags (D, T, h, w), probs (C+1, T, h, w) with
    instance k of class (k % C) + 1 and every pixel foreground."""
    t, h, w = shape
    assert tags.shape[0] == t * h * w
    probs = torch.full((num_classes + 1, len(labels)), 0.02)
    probs[torch.as_tensor(labels % num_classes + 1), torch.arange(len(labels))] = 1.0 - 0.02 * num_classes
    return tags.T.reshape(-1, t, h, w), probs.reshape(-1, t, h, w)


def config(**inference):
    return apply_overrides(profile_config("smoke"), {f"inference.{k}": v for k, v in inference.items()})


@pytest.mark.parametrize("method", METHODS_1D)
def test_group_clip_labels_classes_and_ids_over_time(method):
    tags, labels = separated_tags(1, [400, 300, 200, 100], noise=0.1)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))  # spread over frames
    tags, labels = tags[perm], labels[perm.numpy()]
    clip_tags, probs = clip_inputs(tags, labels)
    groups = group_clip(clip_tags, probs, torch.ones(4, dtype=torch.bool), config(grouping=method, min_pixels=1))
    got = groups.labels.flatten().numpy()
    assert same_partition(got, labels)
    assert groups.num_instances == 4
    # one id per instance over all frames, and the class each instance was drawn with
    classes = groups.stats.ranked_classes(G / 2, 1)[0][:, 0].numpy()
    for k in range(4):
        ids = np.unique(got[labels == k])
        assert len(ids) == 1
        assert classes[ids[0] - 1] == k % 3 + 1
    assert torch.equal(groups.stats.counts.sort().values, torch.tensor([100, 200, 300, 400]))


@pytest.mark.parametrize("method,dim", [(m, 1) for m in METHODS_1D] + [(m, 3) for m in METHODS_ND])
@pytest.mark.parametrize("spread", [0.0, 0.3, 2.0])
def test_overlapping_tags_degrade_gracefully(method, dim, spread):
    rng = np.random.default_rng(3)
    n = 4 * 10 * 25
    labels = rng.integers(0, 30, n)
    tags = torch.tensor(rng.normal(0, spread, (30, dim))[labels] + rng.normal(0, 1.0, (n, dim)), dtype=torch.float32)
    clip_tags, probs = clip_inputs(tags, labels)
    groups = group_clip(clip_tags, probs, torch.ones(4, dtype=torch.bool), config(grouping=method, max_instances=3, min_pixels=20))
    k = groups.num_instances
    assert 1 <= k <= 3
    counts = torch.bincount(groups.labels.flatten(), minlength=k + 1)[1:]
    assert len(counts) == k and (counts >= 20).all()  # no empty or tiny instance
    assert torch.equal(counts, groups.stats.counts)
    assert int(groups.labels.max()) == k


def test_many_separated_instances_keep_at_most_max_instances():
    tags, labels = separated_tags(1, [40] * 25, noise=0.05)
    tags = torch.cat([tags, torch.full((1000 - len(tags), 1), -50.0)])  # one big extra instance
    labels = np.concatenate([labels, np.full(1000 - len(labels), 25)])
    clip_tags, probs = clip_inputs(tags, labels)
    groups = group_clip(clip_tags, probs, torch.ones(4, dtype=torch.bool), config(max_instances=7))
    assert groups.num_instances == 7
    assert len(torch.unique(groups.labels)) == 8


def test_no_foreground_gives_no_instance_and_small_groups_are_dropped():
    tags = torch.zeros(1, 2, 5, 5)
    probs = background_probs(3, 2, 5, 5)
    paint(probs, 1, np.s_[0, 0, :3])  # three foreground pixels
    for min_pixels, expected in ((16, 0), (3, 1)):
        groups = group_clip(tags, probs, torch.ones(2, dtype=torch.bool), config(min_pixels=min_pixels))
        assert groups.num_instances == expected
        assert int(groups.labels.sum()) == 3 * expected


def test_padded_frames_hold_no_instance():
    tags, labels = separated_tags(1, [250, 250, 500], noise=0.05)  # instance 2 only in frames 2, 3
    clip_tags, probs = clip_inputs(tags, labels)
    valid = torch.tensor([True, True, False, False])
    groups = group_clip(clip_tags, probs, valid, config())
    assert groups.num_instances == 2
    assert not groups.labels[2:].any() and not groups.fg_soft[2:].any()
    assert groups.stats.counts.tolist() == [250, 250]


def test_foreground_threshold():
    tags = torch.zeros(1, 1, 4, 8)
    probs = torch.zeros(2, 1, 4, 8)
    probs[0] = torch.linspace(0.05, 0.95, 32).view(1, 4, 8)  # P(background)
    probs[1] = 1 - probs[0]
    for threshold in (0.3, 0.5, 0.8):
        groups = group_clip(tags, probs, torch.ones(1, dtype=torch.bool), config(foreground_threshold=threshold, min_pixels=1))
        assert torch.equal(groups.labels[0] > 0, probs[0, 0] < 1 - threshold)
        assert torch.equal(groups.fg_soft > 0.5, probs[0] < 1 - threshold)


def test_majority_vote_topk_and_score():
    n = 500
    tags = torch.tensor(np.random.default_rng(0).normal(0, 0.3, (n, 1)), dtype=torch.float32)
    probs = torch.zeros(4, n)
    probs[0] = 0.05
    probs[2, :300], probs[3, :300], probs[1, :300] = 0.5, 0.4, 0.05  # 60 % vote class 2
    probs[3, 300:], probs[1, 300:] = 0.95, 0.0  # 40 % vote class 3 with high probability
    groups = group_clip(tags.T.reshape(1, 1, 20, 25), probs.reshape(4, 1, 20, 25), torch.ones(1, dtype=torch.bool), config())
    classes, scores = groups.stats.ranked_classes(G / 2, 3)
    assert classes[0].tolist() == [2, 3, 1]  # votes first, then mean probability
    mode = groups.stats.modes[0]
    compact = math.exp(-float(((tags - mode) ** 2).sum(1).mean()) / (G / 2) ** 2)
    mean_prob = probs[1:].mean(1)
    assert scores[0].tolist() == pytest.approx([float(mean_prob[c - 1]) * compact for c in (2, 3, 1)], rel=1e-4)


def test_tighter_instances_score_higher():
    rng = np.random.default_rng(0)
    tags = torch.tensor(np.concatenate([rng.normal(0, 0.05, 500), rng.normal(6, 0.6, 500)])[:, None], dtype=torch.float32)
    labels = np.repeat([0, 3], 500)  # same class for both
    clip_tags, probs = clip_inputs(tags, labels, shape=(2, 20, 25))
    groups = group_clip(clip_tags, probs, torch.ones(2, dtype=torch.bool), config())
    scores = groups.stats.ranked_classes(G / 2, 1)[1][:, 0]
    tight = int(groups.labels.flatten()[0]) - 1
    assert scores[tight] > scores[1 - tight]
    assert ((scores > 0) & (scores <= 1)).all()


def test_bridge_bandwidth_must_be_positive():
    cfg = apply_overrides(profile_config("smoke"), {"inference.bridge_bandwidth": 0.0})
    with pytest.raises(ValueError, match="inference.bridge_bandwidth"):
        check_inference_config(cfg)


def test_histogram_needs_scalar_tags():
    cfg = apply_overrides(profile_config("smoke"), {"inference.grouping": "histogram", "model.tag_dim": 2})
    with pytest.raises(ValueError, match="tag_dim"):
        check_inference_config(cfg)
    with pytest.raises(ValueError, match="1-D"):
        group_tags(torch.zeros(5, 2), "histogram", 1.5)


def test_components_baseline_splits_disconnected_foreground_and_ignores_tags():
    cfg = apply_overrides(profile_config("smoke"), {"inference.grouping": "components", "inference.min_pixels": 1})
    check_inference_config(cfg)
    T, h, w = 3, 8, 10
    probs = background_probs(2, T, h, w)
    paint(probs, 1, np.s_[:, 1:3, 1:3])  # blob A, class 1, all frames
    paint(probs, 2, np.s_[1:, 5:7, 6:9])  # blob B, class 2, frames 1-2
    tags = torch.randn(1, T, h, w) * 10  # untrained tags: they must not split a component
    groups = group_clip(tags, probs, torch.ones(T, dtype=torch.bool), cfg)
    assert groups.num_instances == 2
    a, b = groups.labels[0, 1, 1].item(), groups.labels[1, 5, 6].item()
    assert a != b and a > 0 and b > 0
    assert (groups.labels == a).sum() == 4 * T and (groups.labels == b).sum() == 6 * 2
    classes, scores = groups.stats.ranked_classes(1.5, 1)
    assert sorted(classes[:, 0].tolist()) == [1, 2]
    assert torch.allclose(scores, torch.ones_like(scores))  # compactness factor is 1


def test_components_split_separates_touching_instances_by_tag_but_not_disconnected_ones():
    cfg = apply_overrides(profile_config("smoke"), {"inference.grouping": "components_split", "inference.min_pixels": 2})
    check_inference_config(cfg)
    T, h, w = 2, 8, 12
    probs = background_probs(1, T, h, w)
    paint(probs, 1, np.s_[:, 1:5, 1:9])  # one connected blob ...
    tags = torch.zeros(1, T, h, w)
    tags[0, :, 1:5, 5:9] = G  # ... whose right half carries another tag: two touching instances
    paint(probs, 1, np.s_[:, 6:8, 10:12])  # a separate blob with the left tag
    tags[0, 0, 1, 1] = -0.9 * G  # a stray pixel, a cluster of its own, too small: it joins the nearest part
    groups = group_clip(tags, probs, torch.ones(T, dtype=torch.bool), cfg)
    labels = groups.labels
    left, right, apart = labels[0, 2, 2].item(), labels[0, 2, 6].item(), labels[0, 6, 10].item()
    assert len({left, right, apart}) == 3 and min(left, right, apart) > 0
    assert groups.num_instances == 3
    assert (labels == left).sum() == 4 * 4 * T and (labels == right).sum() == 4 * 4 * T
    assert labels[0, 1, 1].item() == left
    # with the plain components the touching pair is one instance
    plain = group_clip(tags, probs, torch.ones(T, dtype=torch.bool),
                       apply_overrides(cfg, {"inference.grouping": "components"}))
    assert plain.num_instances == 2
