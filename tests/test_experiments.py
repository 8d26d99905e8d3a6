"""The notebook steps of tagvis_lib.notebook.experiments: data, training, evaluation, Table III."""
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tagvis_lib.notebook import experiments as ex
from tagvis_lib.ablations import TABLE3_ABLATIONS
from tagvis_lib.cli import main as tagvis
from tagvis_lib.config import apply_overrides
from tagvis_lib.errors import TagvisError

#: A two-step smoke run: every training in this file takes about a second.
TINY = {"train.max_steps": 2, "train.log_every": 1}


@pytest.fixture(scope="module")
def cfg():
    return ex.experiment_config("smoke", device="cpu", seed=0, overrides=TINY)


@pytest.fixture(scope="module")
def trained(synth_benchmark, cfg, tmp_path_factory):
    """A finished two-step run on the shared tiny benchmark."""
    run_dir = tmp_path_factory.mktemp("trained")
    summary = ex.train_or_resume(cfg, run_dir, ytvis_root=synth_benchmark["ytvis"], progress=False)
    return run_dir, summary


def test_prepare_benchmark_writes_once_and_matches_the_synth_command(tmp_path):
    data = ex.prepare_benchmark(tmp_path / "run", "smoke")
    valid_json = data.ytvis_root / "valid.json"
    stamp = valid_json.stat().st_mtime_ns
    again = ex.prepare_benchmark(tmp_path / "run", "smoke")
    assert again == data and valid_json.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert data.embedded and (data.davis_root / "ImageSets" / "2017" / "val.txt").exists()
    # The printed command writes the same benchmark.
    argv = shlex.split(ex.synth_command(tmp_path / "run", "smoke"))
    argv[2] = str(tmp_path / "by_cli")
    assert argv[:2] == ["tagvis", "synth"] and tagvis(argv[1:]) == 0
    for name in ("train.json", "valid.json", "test.json"):
        assert json.loads((tmp_path / "by_cli" / "ytvis" / name).read_text()) == json.loads((data.ytvis_root / name).read_text())
    assert (data.ytvis_test, data.davis_test) == ("test", "test-dev")
    assert (data.davis_root / "ImageSets" / "2017" / "test-dev.txt").read_text().split() == ["test0000", "test0001"]
    with pytest.raises(TagvisError, match="benchmark.json"):
        ex.prepare_benchmark(tmp_path / "run", "smoke", seed=1)


def test_resolve_data_uses_the_users_roots_and_asks_for_a_local_split(tmp_path, synth_benchmark):
    ytvis = tmp_path / "ytvis"
    shutil.copytree(synth_benchmark["ytvis"], ytvis)
    with pytest.raises(TagvisError, match="tagvis split"):
        ex.resolve_data(tmp_path / "run", "smoke", ytvis_root=ytvis, davis_root=synth_benchmark["davis"])
    assert tagvis(["split", str(ytvis), "--holdout", "0.5"]) == 0
    data = ex.resolve_data(tmp_path / "run", "smoke", ytvis_root=ytvis, davis_root=synth_benchmark["davis"])
    assert (data.ytvis_root, data.ytvis_train, data.ytvis_valid) == (ytvis, "train_sub", "valid_sub")
    assert (data.ytvis_test, data.davis_test) == ("valid_sub", "val")  # the user's held-out splits are reported
    assert data.davis_root == synth_benchmark["davis"] and not data.embedded
    assert not (tmp_path / "run" / "data").exists()  # nothing embedded was written
    only_davis = ex.resolve_data(tmp_path / "run", "smoke", davis_root=synth_benchmark["davis"])
    assert only_davis.ytvis_root == tmp_path / "run" / "data" / "ytvis" and not only_davis.embedded


def test_training_clip_draws_are_the_clips_the_trainer_takes(synth_benchmark, cfg):
    from tagvis_lib.data import YTVISDataset
    from tagvis_lib.data.torch_dataset import ClipDataset

    dataset = YTVISDataset(synth_benchmark["ytvis"], "train")
    clips = ClipDataset(dataset, cfg.data, train=True, seed=cfg.train.seed)
    for index in range(len(dataset)):
        draws = ex.training_clip_draws(dataset.num_frames(index), cfg, index, epochs=2)
        for epoch, draw in enumerate(draws):
            clips.set_epoch(epoch)
            taken = clips[index]["frame_indices"].numpy()
            assert sorted(taken.tolist()) == sorted(draw.indices.tolist())
            assert all(1 <= length <= cfg.data.max_drop for _, length in draw.drops)
    indices, valid = ex.inference_clip(100, cfg)
    assert len(indices) == cfg.data.clip_length and cfg.inference.clip_length is None and valid.all() and indices[0] == 0 and indices[-1] == 99


def test_training_clip_is_displayable(synth_benchmark, cfg):
    from tagvis_lib.data import YTVISDataset

    clip = ex.training_clip(YTVISDataset(synth_benchmark["ytvis"], "train"), cfg, index=1)
    t, h, w = cfg.data.clip_length, cfg.data.height, cfg.data.width
    assert clip["frames"].shape == (t, h, w, 3) and clip["frames"].dtype == np.uint8
    assert clip["instance_ids"].shape == (t, h, w) and clip["frames"].std() > 5
    assert set(np.unique(clip["instance_ids"])) - {255} <= set(range(cfg.data.max_instances + 1))


def test_train_or_resume_reuses_a_finished_run_and_extends_a_longer_budget(trained, synth_benchmark, cfg):
    run_dir, first = trained
    assert first["steps"] == 2 and not first["reused"] and (run_dir / ex.FINAL).exists()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    again = ex.train_or_resume(cfg, run_dir, ytvis_root=synth_benchmark["ytvis"], progress=False)
    assert again["reused"] and again["steps"] == 2
    assert (run_dir / "metrics.jsonl").read_text().splitlines() == lines
    longer = shutil.copytree(run_dir, run_dir.parent / "longer")
    more = ex.train_or_resume(apply_overrides(cfg, {"train.max_steps": 3}), longer,
                              ytvis_root=synth_benchmark["ytvis"], progress=False)
    assert more["steps"] == 3 and not more["reused"]


def test_ensure_checkpoint_trains_only_when_missing(tmp_path, trained, synth_benchmark, cfg):
    data = ex.DataPaths(synth_benchmark["ytvis"], synth_benchmark["davis"])
    (tmp_path / ex.TRAIN_DIR).mkdir()
    shutil.copy(trained[0] / ex.FINAL, tmp_path / ex.TRAIN_DIR / ex.FINAL)
    assert ex.ensure_checkpoint(cfg, data, tmp_path, progress=False) == tmp_path / ex.TRAIN_DIR / ex.FINAL
    assert not (tmp_path / ex.TRAIN_DIR / "metrics.jsonl").exists()  # reused as it was
    fresh = ex.ensure_checkpoint(cfg, data, tmp_path / "fresh", progress=False)
    assert fresh.exists() and (fresh.parent / "metrics.jsonl").exists()


def test_evaluate_ytvis_run_scores_the_results_file_it_writes(tmp_path, trained, synth_benchmark):
    from tagvis_lib.metrics import evaluate_ytvis

    out = ex.evaluate_ytvis_run(trained[0] / ex.FINAL, synth_benchmark["ytvis"], "valid", tmp_path, device="cpu",
                                progress=False)
    assert set(out["metrics"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"}
    assert out["videos"] == 2 and out["frames"] > 0 and out["network_fps"] > 0 and out["device"].startswith("cpu")
    results = json.loads(open(out["results"]).read())
    assert evaluate_ytvis(synth_benchmark["ytvis"] / "valid.json", results) == pytest.approx(out["metrics"])


def test_evaluate_ytvis_run_refuses_a_checkpoint_of_other_categories(tmp_path, trained, synth_benchmark):
    from tagvis_lib.errors import CheckpointError

    ytvis = shutil.copytree(synth_benchmark["ytvis"], tmp_path / "ytvis")
    data = json.loads((ytvis / "valid.json").read_text())
    data["categories"][0]["name"] = "something else"
    (ytvis / "valid.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="categories"):
        ex.evaluate_ytvis_run(trained[0] / ex.FINAL, ytvis, "valid", tmp_path, device="cpu", progress=False)


def test_evaluate_davis_run_writes_proposals_for_every_frame(tmp_path, trained, synth_benchmark):
    out = ex.evaluate_davis_run(trained[0] / ex.FINAL, synth_benchmark["davis"], "val", tmp_path, device="cpu",
                                progress=False)
    assert {"J&F-Mean", "J-Mean", "F-Mean"} <= set(out["metrics"])
    assert 0.0 <= out["metrics"]["J&F-Mean"] <= 1.0 and out["video_fps"] > 0
    for seq in (synth_benchmark["davis"] / "ImageSets" / "2017" / "val.txt").read_text().split():
        frames = sorted((synth_benchmark["davis"] / "Annotations_unsupervised" / "480p" / seq).glob("*.png"))
        assert [p.name for p in sorted((tmp_path / "davis_val" / seq).glob("*.png"))] == [p.name for p in frames]


def test_row_slugs_are_distinct_folder_names():
    slugs = [ex.row_slug(r) for r in TABLE3_ABLATIONS]
    assert len(set(slugs)) == len(slugs) and all(s.replace("_", "").isalnum() for s in slugs)


def test_device_label_names_the_cpu_threads():
    assert ex.device_label("cpu").startswith("cpu (")


def test_setup_resolves_the_device_and_makes_the_figures_folder(tmp_path, capsys):
    env = ex.setup("smoke", None, tmp_path / "figs", "auto", seed=3, overrides={"train.max_steps": 7})
    assert env.device in ("cpu", "mps") or env.device.startswith("cuda")
    assert env.run_dir == Path("../runs/smoke") and (tmp_path / "figs").is_dir()
    assert env.cfg.train.seed == 3 and env.cfg.train.max_steps == 7 and env.cfg.train.device == env.device
    assert "profile 'smoke' on" in capsys.readouterr().out
    from tagvis_lib.errors import TagvisError

    with pytest.raises(TagvisError, match="not a torch device"):
        ex.setup("smoke", tmp_path, tmp_path / "figs", "nonsense")


def test_semantic_pixel_stats_count_the_pixels_of_the_clips(trained, synth_benchmark):
    stats = ex.semantic_pixel_stats(trained[0] / ex.FINAL, synth_benchmark["ytvis"], "valid", clips=2, device="cpu")
    assert stats["clips"] == 2 and stats["annotated_foreground"] > 0
    assert 0.0 <= stats["foreground_iou"] <= 1.0 and 0.0 <= stats["class_accuracy"] <= 1.0
    train = ex.semantic_pixel_stats(trained[0] / ex.FINAL, synth_benchmark["ytvis"], "train", clips=1,
                                    train_clips=True, device="cpu")
    assert train["clips"] == 1


def test_seed_checkpoints_reuse_the_main_run_and_train_other_seeds(tmp_path, synth_benchmark, cfg):
    data = ex.DataPaths(synth_benchmark["ytvis"], synth_benchmark["davis"])
    paths = ex.seed_checkpoints(cfg, data, tmp_path, [0, 2])
    assert paths == [tmp_path / ex.TRAIN_DIR / ex.FINAL, tmp_path / f"{ex.TRAIN_DIR}_seed2" / ex.FINAL]
    assert json.loads((paths[1].parent / "config.json").read_text())["train"]["seed"] == 2
    stamp = paths[1].stat().st_mtime_ns
    assert ex.seed_checkpoints(cfg, data, tmp_path, [2]) == [paths[1]] and paths[1].stat().st_mtime_ns == stamp


def test_budget_curve_trains_the_full_model_per_budget_and_scores_valid(tmp_path, synth_benchmark, cfg):
    from tagvis_lib.notebook.figures import budget_curve_figure

    data = ex.DataPaths(synth_benchmark["ytvis"], synth_benchmark["davis"])
    points = ex.budget_curve("smoke", data, tmp_path, [1, None], overrides=TINY, device="cpu")
    assert [p["budget"] for p in points] == [1, None] and points[0]["steps"] == 1
    assert points[1]["steps"] == cfg.train.max_steps  # the fixture's own schedule
    assert points[1]["fraction"] == pytest.approx(1.0) and 0.0 <= points[0]["J&F-Mean"] <= 1.0
    assert json.loads((tmp_path / "budget_1" / "ours" / "seed0" / "result.json").read_text())["eval_split"] == "val"
    fig = budget_curve_figure(points, chosen=1)
    assert len(fig.axes[0].lines) == 3  # the curve, the 0.9 line, the chosen budget


def _oracle_tags(monkeypatch, trained, scale):
    """Make tag_separation_stats see a model whose tag channel 0 is ``scale`` x the clip's instance id."""
    from tagvis_lib.data import torch_dataset
    from tagvis_lib.model.network import TagVISOutput

    seen = {}
    getitem = torch_dataset.ClipDataset.__getitem__

    def remember(self, index):
        item = getitem(self, index)
        seen["ids"] = item["instance_ids"]
        return item

    model, cfg, cats, dev = ex._load_for_eval(trained[0] / ex.FINAL, None, "cpu", None)

    class Oracle(torch.nn.Module):
        def forward(self, frames):
            ids = seen["ids"].float()
            tags = torch.zeros(1, cfg.model.tag_dim, *ids.shape)
            tags[0, 0] = scale * ids
            return TagVISOutput(tags, torch.zeros(1, 2, *ids.shape))

    monkeypatch.setattr(torch_dataset.ClipDataset, "__getitem__", remember)
    monkeypatch.setattr(ex, "_load_for_eval", lambda *args: (Oracle(), cfg, cats, dev))


def test_tag_separation_stats_of_the_trained_model(trained, synth_benchmark):
    stats = ex.tag_separation_stats(trained[0] / ex.FINAL, synth_benchmark["ytvis"], "train", clips=4, device="cpu")
    assert stats["clips"] == 4 and stats["instance_frames"] > 0
    assert stats["spread"] >= 0 and 0.0 <= stats["pixel_accuracy"] <= 1.0


def test_tag_separation_stats_of_perfect_and_collapsed_tags(trained, synth_benchmark, monkeypatch):
    _oracle_tags(monkeypatch, trained, 3.0)
    perfect = ex.tag_separation_stats(trained[0] / ex.FINAL, synth_benchmark["ytvis"], "train", clips=8, device="cpu")
    assert perfect["touching_pairs"] > 0 and perfect["instance_frames"] > perfect["touching_pairs"]
    assert perfect["spread"] == 0.0 and perfect["frame_step"] == 0.0 and perfect["pixel_accuracy"] == 1.0
    assert perfect["touching_within_bandwidth"] == 0.0 and perfect["pair_distance"] % 3.0 == 0.0
    _oracle_tags(monkeypatch, trained, 0.0)
    collapsed = ex.tag_separation_stats(trained[0] / ex.FINAL, synth_benchmark["ytvis"], "train", clips=8, device="cpu")
    assert collapsed["touching_within_bandwidth"] == 1.0 and collapsed["pair_distance"] == 0.0
    assert collapsed["pixel_accuracy"] < 1.0
