"""Resumable sampler, RNG state and the metrics log."""
import json
import random

import numpy as np
import pytest
import torch

from tagvis_lib.errors import CheckpointError
from tagvis_lib.training import MetricsLog, read_metrics
from tagvis_lib.training.state import ResumableSampler, check_model_config, rng_state, set_rng_state


def global_batches(n, batch, world, epoch):
    """Per step, the set of (dataset index, epoch position) pairs over all ranks."""
    samplers = [ResumableSampler(range(n), batch, world, r, seed=3) for r in range(world)]
    steps = []
    for s in samplers:
        s.set_epoch(epoch)
    per_rank = [list(s) for s in samplers]
    for k in range(samplers[0].steps_per_epoch):
        items = set()
        for r, s in enumerate(samplers):
            items |= set(zip(per_rank[r][k * batch:(k + 1) * batch], s.batch_positions(k)))
        steps.append(items)
    return steps


@pytest.mark.parametrize("n", [4, 5, 7])
def test_one_process_and_two_see_the_same_clips_at_every_step(n):
    assert global_batches(n, 2, 1, epoch=1) == global_batches(n, 1, 2, epoch=1)
    assert global_batches(n, 4, 1, epoch=0) == global_batches(n, 2, 2, epoch=0)


def test_epochs_are_padded_to_full_batches_and_shuffled_per_epoch():
    s = ResumableSampler(range(5), batch_size=2, num_replicas=1, rank=0, seed=0)
    s.set_epoch(0)
    first = list(s)
    assert len(first) == 6 and set(first) == set(range(5)) and s.steps_per_epoch == 3
    s.set_epoch(1)
    assert list(s) != first
    s.set_epoch(0)
    assert list(s) == first


def test_set_start_skips_what_was_consumed():
    s = ResumableSampler(range(8), batch_size=2, num_replicas=2, rank=1, seed=0)
    s.set_epoch(2)
    full = list(s)
    s.set_start(2)
    assert list(s) == full[2:] and len(s) == 2
    with pytest.raises(ValueError):
        s.set_start(5)


def test_rng_state_survives_a_weights_only_round_trip(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    torch.save({"rng": rng_state()}, tmp_path / "s.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item(), np.random.randn())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item(), np.random.randn()) == expected


def test_model_config_difference_is_named():
    check_model_config({"tag_dim": 1}, {"tag_dim": 1}, "ckpt.pt")
    with pytest.raises(CheckpointError, match=r"ckpt.pt: config.model.embed_dim: checkpoint has 16"):
        check_model_config({"tag_dim": 1, "embed_dim": 16}, {"tag_dim": 1, "embed_dim": 32}, "ckpt.pt")


def test_metrics_log_resume_drops_lines_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in (1, 2, 3):
        log.write({"event": "train", "step": step, "total": float("nan") if step == 3 else 1.0})
    log.close()
    with open(path, "a") as fh:
        fh.write('{"event": "train", "st')  # torn line of a killed process
    assert read_metrics(path)[-1] == {"event": "train", "step": 3, "total": None}
    log = MetricsLog(path, resume_step=2)
    log.write({"event": "val", "step": 2, "AP": 0.5})
    log.close()
    assert [(r["event"], r["step"]) for r in read_metrics(path)] == [("train", 1), ("train", 2), ("val", 2)]
    assert all(json.loads(line) for line in path.read_text().splitlines())
    MetricsLog(path).close()  # a new run starts a new log
    assert read_metrics(path) == []


def test_learning_rate_schedules():
    from tagvis_lib.config import TrainConfig
    from tagvis_lib.training.trainer import lr_factor

    constant = TrainConfig(lr_schedule="constant", warmup_steps=4)
    assert [lr_factor(s, 10, constant) for s in (0, 3, 4, 9)] == [0.25, 1.0, 1.0, 1.0]
    cosine = TrainConfig(lr_schedule="cosine", warmup_steps=0)
    values = [lr_factor(s, 10, cosine) for s in range(10)]
    assert values[0] == 1.0 and values[5] == pytest.approx(0.5) and 0 < values[9] < 0.03
    assert all(a > b for a, b in zip(values, values[1:]))
