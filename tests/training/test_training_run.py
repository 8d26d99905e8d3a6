"""Single-process training: the run directory, overrides, divergence, checkpoints, validation."""
import json

import pytest
import torch

from tagvis_lib.cli import main
from tagvis_lib.config import ExperimentConfig, apply_overrides, profile_config
from tagvis_lib.errors import CheckpointError, TagvisError
from tagvis_lib.model import R2Plus1DEncoder, build_model, load_checkpoint, load_model
from tagvis_lib.training import TrainingDiverged, build_optimizer, read_metrics, train
from tagvis_lib.training.trainer import LOGGED


def smoke(**overrides):
    return apply_overrides(profile_config("smoke"), overrides)


def test_train_writes_config_metrics_checkpoints_and_a_loadable_model(synth_benchmark, tmp_path):
    cfg = smoke(**{"train.val_every": 1, "train.val_split": "valid"})
    summary = train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path / "run", progress=False)
    run = tmp_path / "run"
    saved = ExperimentConfig.load(run / "config.json")
    assert saved.model.num_classes == 5  # from the dataset's categories, not the profile's 40
    assert saved.train == cfg.train and saved.data == cfg.data
    rows = read_metrics(run / "metrics.jsonl", "train")
    assert [r["step"] for r in rows] == [1, 2, 3, 4] == list(range(1, summary["steps"] + 1))
    for row in rows:
        assert set(LOGGED) | {"lr", "clips_per_s", "epoch"} <= set(row)
        assert row["total"] == pytest.approx(sum(row[k] for k in LOGGED if k != "total"), rel=1e-5)
    (val,) = read_metrics(run / "metrics.jsonl", "val")
    assert {"AP", "AP50", "AR10"} <= set(val) and 0 <= val["AP"] <= 1 and val["step"] == 4
    assert summary["val"]["AP"] == val["AP"]
    ckpt = load_checkpoint(run / "checkpoint_last.pt")  # weights_only=True
    assert (ckpt["epoch"], ckpt["step"], ckpt["step_in_epoch"]) == (1, 4, 0)
    assert {"optimizer", "scaler", "sampler", "rng"} <= set(ckpt)
    model, cfg_back, categories = load_model(run / "model_final.pt", num_classes=5)
    assert [c["name"] for c in categories][:2] == ["disc", "square"] and cfg_back.model.num_classes == 5
    trained = model.state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in build_model(cfg_back).state_dict().items())


def test_tagging_terms_join_the_total_at_their_start_step(synth_benchmark, tmp_path):
    cfg = smoke(**{"loss.tagging_start_step": 2, "loss.tagging_ramp_steps": 2})
    train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl", "train")
    tagging = [sum(r[k] for k in ("spectra", "specter", "tempra", "temper")) for r in rows]
    assert all(t > 0 for t in tagging)  # computed and logged throughout
    assert [r["total"] - r["ce"] for r in rows] == pytest.approx([0, 0, 0.5 * tagging[2], tagging[3]], rel=1e-5)


def test_cli_overrides_change_the_saved_config(synth_benchmark, tmp_path, capsys):
    code = main(["train", "--davis", str(synth_benchmark["davis"]), "--split", "train", "--profile", "smoke",
                 "--out", str(tmp_path / "run"), "--no-progress", "train.max_steps=1", "train.lr=0.005",
                 "model.tag_dim=2", "loss.margin=2.5"])
    assert code == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["lr"] == 0.005 and saved["model"]["tag_dim"] == 2 and saved["loss"]["margin"] == 2.5
    assert saved["model"]["num_classes"] == 1  # DAVIS: one category, "object"
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 1


def test_bad_override_and_bad_train_setting_are_cli_errors(synth_benchmark, tmp_path, capsys):
    base = ["train", "--ytvis", str(synth_benchmark["ytvis"]), "--profile", "smoke", "--out", str(tmp_path / "r")]
    assert main(base + ["train.nope=1"]) == 2
    assert main(base + ["train.micro_batch=3", "train.batch_size=2"]) == 2
    assert "train.micro_batch" in capsys.readouterr().err


def test_existing_run_is_refused_and_resume_refuses_another_model(synth_benchmark, tmp_path):
    cfg = smoke(**{"train.max_steps": 2})
    train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path, progress=False)
    with pytest.raises(TagvisError, match="resume"):
        train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="model.tag_dim"):
        train(apply_overrides(cfg, {"model.tag_dim": 2}), ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path,
              resume=True, progress=False)
    # a finished run resumes to nothing new; a larger max_steps continues it
    again = train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path, resume=True, progress=False)
    assert again["steps"] == 2 and len(read_metrics(tmp_path / "metrics.jsonl")) == 2
    more = train(apply_overrides(cfg, {"train.max_steps": 3}), ytvis_root=synth_benchmark["ytvis"],
                 out_dir=tmp_path, resume=True, progress=False)
    assert more["steps"] == 3 and [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]


def test_non_finite_loss_stops_naming_step_and_term(synth_benchmark, tmp_path, monkeypatch):
    import tagvis_lib.losses.objective as objective

    calls = {"n": 0}
    real = objective.clip_cross_entropies

    def poisoned(logits, semantic, **kwargs):
        calls["n"] += 1  # once per step: training scores the clips of a step in one pass
        value = real(logits, semantic, **kwargs)
        return value * float("inf") if calls["n"] == 3 else value

    monkeypatch.setattr(objective, "clip_cross_entropies", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 3: .*'ce'"):
        train(smoke(), ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path, progress=False)


def test_a_crash_while_saving_keeps_the_last_good_checkpoint(synth_benchmark, tmp_path, monkeypatch):
    import tagvis_lib.model.checkpoint as checkpoint

    saves = {"n": 0}
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 3:  # the checkpoint of step 3: half a file, then the process "dies"
            with open(f, "wb") as fh:
                fh.write(b"PK\x03\x04 half a checkpoint")
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", crashing_save)
    cfg = smoke(**{"train.checkpoint_every": 1})
    with pytest.raises(OSError, match="disk full"):
        train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path, progress=False)
    assert load_checkpoint(tmp_path / "checkpoint_last.pt")["step"] == 2
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / "model_final.pt").exists()
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    assert train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path, resume=True, progress=False)["steps"] == 4


def test_encoder_starts_from_the_given_weights(synth_benchmark, tmp_path):
    torch.manual_seed(1)
    kinetics = R2Plus1DEncoder(1.0).state_dict()
    torch.save({**kinetics, "fc.weight": torch.zeros(400, 512), "fc.bias": torch.zeros(400)}, tmp_path / "k400.pth")
    cfg = smoke(**{"model.encoder_width": 1.0, "model.encoder_weights": str(tmp_path / "k400.pth"),
                   "train.max_steps": 0})
    train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path / "run", progress=False)
    model, _, _ = load_model(tmp_path / "run" / "model_final.pt")
    assert all(torch.equal(model.encoder.state_dict()[k], v) for k, v in kinetics.items())


def test_encoder_learning_rate_scale_makes_its_own_group():
    cfg = smoke(**{"train.encoder_lr_scale": 0.1, "train.lr": 1e-3, "model.num_classes": 3})
    model = build_model(cfg)
    groups = {g["name"]: g for g in build_optimizer(model, cfg.train).param_groups}
    assert groups["encoder"]["lr"] == pytest.approx(1e-4) and groups["heads"]["lr"] == 1e-3
    n_encoder = sum(1 for name, _ in model.named_parameters() if name.startswith("encoder."))
    assert len(groups["encoder"]["params"]) == n_encoder
    assert len(groups["heads"]["params"]) == len(list(model.parameters())) - n_encoder


def test_resume_mid_epoch_refuses_another_data_order(synth_benchmark, tmp_path):
    cfg = smoke(**{"train.max_steps": 1})
    train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path, progress=False)
    assert load_checkpoint(tmp_path / "checkpoint_last.pt")["step_in_epoch"] == 1
    for change in ({"train.batch_size": 2}, {"train.seed": 1}):
        with pytest.raises(CheckpointError, match=r"config: .*train\.(batch_size|seed)"):
            train(apply_overrides(cfg, {**change, "train.max_steps": 2}), ytvis_root=synth_benchmark["ytvis"],
                  out_dir=tmp_path, resume=True, progress=False)


def test_davis_validation_logs_j_and_f(synth_benchmark, tmp_path):
    cfg = smoke(**{"train.max_steps": None, "train.val_every": 1, "train.val_split": "val"})
    summary = train(cfg, davis_root=synth_benchmark["davis"], out_dir=tmp_path, progress=False)
    (val,) = read_metrics(tmp_path / "metrics.jsonl", "val")
    assert 0 <= val["J&F-Mean"] <= 1 and val["split"] == "val" and summary["val"] == val
    assert val["J&F-Mean"] == pytest.approx((val["J-Mean"] + val["F-Mean"]) / 2)


@pytest.mark.parametrize("weights", [False, True])
def test_paper_profile_warns_without_kinetics_weights(synth_benchmark, tmp_path, capsys, weights):
    small = {"model.encoder_width": 0.125, "model.embed_dim": 16, "model.attention_heads": 2, "data.clip_length": 8,
             "data.height": 48, "data.width": 80, "train.max_steps": 1, "train.precision": "fp32"}
    cfg = apply_overrides(profile_config("paper"), small)
    if weights:
        path = tmp_path / "r2plus1d.pt"
        torch.save(R2Plus1DEncoder(0.125).state_dict(), path)
        cfg = apply_overrides(cfg, {"model.encoder_weights": str(path)})
    train(cfg, ytvis_root=synth_benchmark["ytvis"], out_dir=tmp_path / "run", progress=False)
    assert ("model.encoder_weights is not set" in capsys.readouterr().err) == (not weights)


@pytest.mark.parametrize("override,field", [("inference.grouping=bogus", "inference.grouping"),
                                            ("data.clip_length=0", "data.clip_length"),
                                            ("inference.clip_length=0", "inference.clip_length"),
                                            ("data.short_video=wrap", "data.short_video"),
                                            ("model.tag_dim=0", "tag_dim"),
                                            ("loss.tagging_ramp_steps=-1", "loss.tagging_ramp_steps"),
                                            ("train.ema_decay=1", "train.ema_decay")])
def test_every_config_section_is_checked_before_a_run_folder_exists(synth_benchmark, tmp_path, capsys, override, field):
    out = tmp_path / "run"
    code = main(["train", "--ytvis", str(synth_benchmark["ytvis"]), "--profile", "smoke", "--out", str(out),
                 "--no-progress", override])
    err = capsys.readouterr().err
    assert code == 2 and field in err and "Traceback" not in err
    assert not out.exists()


def test_resume_refuses_changed_settings_reports_a_new_budget_and_needs_a_run(synth_benchmark, tmp_path, capsys):
    base = ["train", "--ytvis", str(synth_benchmark["ytvis"]), "--profile", "smoke", "--out", str(tmp_path / "run"),
            "--no-progress", "train.max_steps=1"]
    assert main(base) == 0
    saved = (tmp_path / "run" / "config.json").read_text()
    for override, field in (("train.lr=0.01", "train.lr"), ("loss.margin=2", "loss.margin")):
        assert main(base + [override, "--resume"]) == 2
        assert field in capsys.readouterr().err
        assert (tmp_path / "run" / "config.json").read_text() == saved  # never rewritten
    assert main(base[:-1] + ["train.max_steps=2", "--resume"]) == 0
    assert "resuming with a new budget: train.max_steps: 1 -> 2" in capsys.readouterr().err
    missing = ["train", "--ytvis", str(synth_benchmark["ytvis"]), "--profile", "smoke", "--out", str(tmp_path / "none"),
               "--resume"]
    assert main(missing) == 2 and "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
