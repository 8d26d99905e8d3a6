"""Bridging gaps: tracks of an instance that vanishes and returns become one (inference.bridge_gaps)."""
import numpy as np
import pytest

from inference_helpers import Oracle, grey_video, oracle_config
from tagvis_lib.inference.bridging import candidate_pairs, choose_links
from tagvis_lib.inference.predictor import predict_video


def gap_video(length: int = 24, gap: tuple[int, int] = (8, 15)):
    """Two instances (classes 1 and 2) that leave the view for frames gap[0]..gap[1] and come back moved."""
    boxes = []
    for t in range(length):
        if gap[0] <= t <= gap[1]:
            boxes.append([])
        elif t < gap[0]:
            boxes.append([(2, 2, 10, 10), (14, 20, 22, 30)])
        else:
            boxes.append([(3, 12, 11, 20), (13, 2, 21, 12)])
    return grey_video(boxes)


@pytest.mark.parametrize("bridge", [False, True])
def test_instances_that_return_keep_one_track(bridge):
    frames, gt = gap_video()
    model = Oracle(clip_offset=5.0)  # tags of separate passes disagree in value
    cfg = oracle_config(clip_length=4, long_video="overlapping", clip_overlap=2, bridge_gaps=bridge)
    pred = predict_video(model, frames, cfg, "cpu")
    assert pred.num_instances == (2 if bridge else 4)
    if bridge:
        for m, mask in enumerate(pred.instance_masks):
            g = pred.classes[pred.entry_instance == m][0]
            assert np.array_equal(mask, gt == g)  # one track over both sides of the gap
        # one 2-frame pass for the one frame pair either side of the gap, counted as network frames
        assert pred.timing["network_frames"] == sum(4 for _ in range(pred.timing["clips"])) + 2
        assert model.calls == pred.timing["clips"] + 1


class ShiftedPairOracle(Oracle):
    """The oracle, with the second frame of every 2-frame pass (the bridging passes) tagged 2 higher."""

    def forward(self, x):
        out = super().forward(x)
        if x.shape[2] == 2:
            out.tags[:, :, 1] += 2.0
        return out


@pytest.mark.parametrize("bridge_bandwidth,tracks", [(None, 4), (1.0, 4), (3.0, 2)])
def test_bridge_bandwidth_sets_the_largest_distance_joined(bridge_bandwidth, tracks):
    frames, _ = gap_video()
    cfg = oracle_config(clip_length=4, long_video="overlapping", clip_overlap=2, bridge_gaps=True,
                        bandwidth=1.5, bridge_bandwidth=bridge_bandwidth)
    # pieces either side of the gap are 2 apart in the bridging pass: beyond the grouping bandwidth
    assert predict_video(ShiftedPairOracle(clip_offset=5.0), frames, cfg, "cpu").num_instances == tracks


def test_candidates_need_time_order_and_the_same_class():
    first = np.array([0, 10, 12, 3])
    last = np.array([5, 20, 19, 11])
    classes = np.array([1, 1, 2, 1])
    pairs = candidate_pairs(first, last, classes)
    assert pairs == [(0, 1)]  # 0 -> 2 has another class; 3 overlaps 0 and 1 in time
    assert candidate_pairs(np.array([-1, 4]), np.array([-1, 6]), np.array([1, 1])) == []  # empty track


def test_links_closest_first_with_one_predecessor_and_successor():
    pairs = [(0, 2), (1, 2), (0, 3), (2, 4)]
    distances = np.array([0.4, 0.1, 0.3, 0.2])
    root = choose_links(pairs, distances, bandwidth=1.0, num_tracks=5)
    # (1, 2) first takes 2's predecessor, so (0, 2) is refused; 0 -> 3 and 2 -> 4 join
    assert root.tolist() == [0, 1, 1, 0, 1]
    root = choose_links(pairs, distances, bandwidth=0.25, num_tracks=5)
    assert root.tolist() == [0, 1, 1, 3, 1]  # only pairs closer than the bandwidth
