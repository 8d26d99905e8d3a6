"""Config dataclasses, profiles and overrides."""
import json

import pytest

from tagvis_lib import TABLE3_ABLATIONS, apply_overrides, profile_config
from tagvis_lib.ablations import PAPER_TABLE3, TABLE3_GROUPS
from tagvis_lib.config import PROFILES, ExperimentConfig


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_round_trip_through_json(name, tmp_path):
    cfg = profile_config(name)
    cfg.save(tmp_path / "config.json")
    again = ExperimentConfig.load(tmp_path / "config.json")
    assert again == cfg
    assert json.loads((tmp_path / "config.json").read_text())["profile"] == name


def test_paper_profile_holds_the_paper_settings():
    cfg = profile_config("paper")
    assert cfg.data.clip_length == 32
    assert (cfg.data.min_drop, cfg.data.max_drop) == (1, 5)
    assert cfg.train.lr == 1e-4 and cfg.train.epochs == 100
    assert cfg.loss.margin == 3.0 and cfg.model.tag_dim == 1
    assert cfg.model.encoder_width == 1.0
    assert cfg.model.encoder_skips is False  # the bottleneck separates the encoder from both heads
    assert (cfg.data.height, cfg.data.width) == (360, 640)  # an open point: the paper gives no size
    weights = {k: v for k, v in vars(cfg.loss).items() if k.endswith("_weight")}
    assert weights == dict.fromkeys(weights, 1.0) and len(weights) == 6  # four tagging terms, CE, background
    from tagvis_lib.training import build_optimizer
    from tagvis_lib.model import build_model
    import dataclasses
    small = dataclasses.replace(cfg.model, encoder_width=0.125, embed_dim=16, attention_heads=2)
    optimizer = build_optimizer(build_model(small), cfg.train)
    assert type(optimizer).__name__ == "Adam" and optimizer.param_groups[0]["lr"] == 1e-4


def test_overrides_parse_by_field_type():
    cfg = apply_overrides(
        profile_config("smoke"),
        ["model.tag_dim=3", "loss.pixels_per_instance=None", "train.grad_clip=0.5", "model.self_attention=false"],
    )
    assert cfg.model.tag_dim == 3 and cfg.loss.pixels_per_instance is None
    assert cfg.train.grad_clip == 0.5 and cfg.model.self_attention is False
    # the original is untouched
    assert profile_config("smoke").model.self_attention is True


@pytest.mark.parametrize(
    "bad, exc",
    [(["model.nope=1"], KeyError), (["nosection.x=1"], KeyError), (["model.tag_dim=two"], ValueError),
     (["model.tag_dim"], ValueError), (["model.self_attention=maybe"], ValueError)],
)
def test_bad_overrides_name_the_key(bad, exc):
    with pytest.raises(exc, match=bad[0].split("=")[0].split(".")[-1] if exc is KeyError else "."):
        apply_overrides(profile_config("smoke"), bad)


def test_every_table3_row_applies_and_has_paper_values():
    assert set(TABLE3_ABLATIONS) == set(PAPER_TABLE3) == set(TABLE3_GROUPS)
    assert len(TABLE3_ABLATIONS) == 12
    base = profile_config("smoke")
    for row, overrides in TABLE3_ABLATIONS.items():
        cfg = apply_overrides(base, overrides)
        changed = {k for k in overrides}
        for key, value in overrides.items():
            section, name = key.split(".")
            assert getattr(getattr(cfg, section), name) == value, row
        assert (row == "Ours") == (not changed)


def test_encoder_skips_off_in_the_paper_profile_and_on_for_configs_written_before_the_switch():
    from tagvis_lib.config import ExperimentConfig, profile_config

    assert profile_config("paper").model.encoder_skips is False
    assert profile_config("cpu").model.encoder_skips is True
    old = profile_config("paper").to_dict()
    del old["model"]["encoder_skips"]
    assert ExperimentConfig.from_dict(old).model.encoder_skips is True
    assert ExperimentConfig.from_dict(profile_config("paper").to_dict()).model.encoder_skips is False


def test_inference_clip_length_follows_the_training_clip_unless_set():
    from tagvis_lib.inference.planning import inference_clip_length

    for name in PROFILES:
        cfg = profile_config(name)
        assert cfg.inference.clip_length is None and inference_clip_length(cfg) == cfg.data.clip_length
    cfg = apply_overrides(profile_config("cpu"), ["data.clip_length=16"])
    assert inference_clip_length(cfg) == 16
    assert inference_clip_length(apply_overrides(cfg, ["inference.clip_length=4", "inference.clip_overlap=2"])) == 4
