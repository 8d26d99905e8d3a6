"""train.ema_decay: the moving average of the weights, what model_final.pt holds, and its resume."""
import pytest
import torch
from torch import nn

from tagvis_lib.config import ExperimentConfig, apply_overrides, profile_config
from tagvis_lib.errors import CheckpointError
from tagvis_lib.model import build_model, load_checkpoint, save_checkpoint
from tagvis_lib.training import train
from tagvis_lib.training.averaging import WeightAverage


def test_average_follows_the_rising_decay_and_copies_integer_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.5)
    expected = {k: v.clone().double() for k, v in model.state_dict().items() if v.is_floating_point()}
    for t in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()(torch.randn(5, 3))  # moves the running statistics and the batch count
        d = min(0.5, (1 + t) / (10 + t))  # 0.1, 0.18, 0.25, 0.31: below 0.5 throughout
        for k, v in model.state_dict().items():
            if k in expected:
                expected[k] = d * expected[k] + (1 - d) * v.double()
        average.update(model)
    got = average.module.state_dict()
    for k, v in expected.items():
        assert torch.allclose(got[k].double(), v, atol=1e-6), k
    assert got["1.num_batches_tracked"] == model[1].num_batches_tracked == 4
    assert average.updates == 4 and not any(p.requires_grad for p in average.module.parameters())


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_average_refuses_a_decay_outside_0_1(decay):
    with pytest.raises(ValueError, match="train.ema_decay"):
        WeightAverage(nn.Linear(2, 2), decay)


def test_final_model_holds_the_average_and_resume_needs_it(synth_benchmark, tmp_path):
    cfg = apply_overrides(profile_config("smoke"), {"train.ema_decay": 0.5, "train.max_steps": 3})
    run = tmp_path / "run"
    train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=run, progress=False)
    final = load_checkpoint(run / "model_final.pt")["model"]
    last = load_checkpoint(run / "checkpoint_last.pt")
    assert last["average"]["updates"] == 3
    assert all(torch.equal(final[k], v) for k, v in last["average"]["model"].items())
    assert any(not torch.equal(final[k], v) for k, v in last["model"].items())  # raw weights differ

    # a checkpoint of this config without its average cannot resume it
    del last["average"]
    payload = {k: v for k, v in last.items() if k not in ("format", "model", "config", "categories")}
    saved = ExperimentConfig.from_dict(last["config"])
    model = build_model(saved)
    model.load_state_dict(last["model"])
    save_checkpoint(run / "checkpoint_last.pt", model, saved, last["categories"], **payload)
    longer = apply_overrides(cfg, {"train.max_steps": 4})
    with pytest.raises(CheckpointError, match="average"):
        train(longer, ytvis_root=synth_benchmark["ytvis"], out_dir=run, progress=False, resume=True)
