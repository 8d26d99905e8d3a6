"""End to end: ``tagvis synth`` -> a random-weights smoke model -> ``tagvis predict`` -> ``tagvis evaluate``."""
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from tagvis_lib.cli import COMMANDS, main
from tagvis_lib.config import apply_overrides, profile_config
from tagvis_lib.data.davis import DAVIS_CATEGORIES, DAVISDataset
from tagvis_lib.data.ytvis import YTVISDataset
from tagvis_lib.model import build_model, save_checkpoint
from tagvis_lib.notebook.figures import write_mp4

pytestmark = pytest.mark.slow


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    """Exit code, the last stdout line parsed as JSON (None if not JSON) and stderr."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    try:
        return code, json.loads(lines[-1]), captured.err
    except (IndexError, json.JSONDecodeError):
        return code, None, captured.err


def smoke_checkpoint(path, categories, seed=0, **model):
    torch.manual_seed(seed)
    cfg = apply_overrides(profile_config("smoke"), {"model.num_classes": len(categories), **{f"model.{k}": v for k, v in model.items()}})
    save_checkpoint(path, build_model(cfg.model), cfg, categories)
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    assert main(["synth", str(root / "synth"), "--train-videos", "3", "--valid-videos", "2", "--height", "48", "--width", "80"]) == 0
    ytvis = YTVISDataset(root / "synth" / "ytvis", "valid")
    return {
        "root": root,
        "ytvis": root / "synth" / "ytvis",
        "davis": root / "synth" / "DAVIS",
        "ytvis_ck": smoke_checkpoint(root / "ytvis.pt", ytvis.categories),
        "davis_ck": smoke_checkpoint(root / "davis.pt", DAVIS_CATEGORIES, tag_dim=2),
        "ytvis_dataset": ytvis,
    }


@pytest.fixture(scope="module")
def ytvis_results(bench):
    out = bench["root"] / "pred" / "results.json"
    code = main(["predict", "--checkpoint", str(bench["ytvis_ck"]), "--ytvis", str(bench["ytvis"]), "--split", "valid",
                 "--out", str(out), "--device", "cpu", "--no-progress", "inference.topk_classes=2"])
    assert code == 0
    return out


def test_predict_ytvis(bench, ytvis_results):
    dataset = bench["ytvis_dataset"]
    entries = json.loads(ytvis_results.read_text())
    lengths = {v: dataset.num_frames(i) for i, v in enumerate(dataset.video_ids)}
    ids = {c["id"] for c in dataset.categories}
    assert entries and {e["video_id"] for e in entries} <= set(lengths)
    for e in entries:
        assert e["category_id"] in ids and 0 <= e["score"] <= 1
        assert len(e["segmentations"]) == lengths[e["video_id"]]
        assert any(s is not None for s in e["segmentations"])
    for video in lengths:  # top-2 classes: every mask listed twice
        assert sum(e["video_id"] == video for e in entries) % 2 == 0
    with zipfile.ZipFile(ytvis_results.with_suffix(".zip")) as zf:
        assert json.loads(zf.read("results.json")) == entries


def test_predict_prints_fps_and_outputs(bench, capsys):
    out = bench["root"] / "pred2"
    code, line, _ = run_cli(capsys, "predict", "--checkpoint", bench["ytvis_ck"], "--ytvis", bench["ytvis"], "--split", "valid",
                            "--out", out, "--device", "cpu", "--no-progress", "long_video=overlapping", "clip_overlap=2")
    assert code == 0
    assert line["videos"] == 2 and line["frames"] == sum(bench["ytvis_dataset"].num_frames(i) for i in range(2))
    assert line["network_fps"] > 0 and line["video_fps"] > 0
    # overlapping clips of 8 sharing 2 frames: some frames go through the network twice
    assert line["network_frames"] >= line["frames"]
    assert line["outputs"]["results"] == str(out / "results.json") and (out / "results.zip").is_file()


def test_predict_davis(bench, capsys):
    out = bench["root"] / "davis_pred"
    code, line, _ = run_cli(capsys, "predict", "--checkpoint", bench["davis_ck"], "--davis", bench["davis"], "--split", "val",
                            "--out", out, "--device", "cpu", "--no-progress")
    assert code == 0 and line["videos"] == 2
    dataset = DAVISDataset(bench["davis"], "val")
    for seq in dataset.sequences:
        annotations = sorted(p.name for p in (bench["davis"] / "Annotations_unsupervised" / "480p" / seq).iterdir())
        written = sorted(p.name for p in (out / seq).iterdir())
        assert written == annotations
        with Image.open(out / seq / written[0]) as image:
            assert image.mode == "P" and image.size == (80, 48)
            assert np.asarray(image).max() <= 20


def test_predict_video(bench, capsys):
    frames = YTVISDataset(bench["ytvis"], "valid")[0].frames
    video = bench["root"] / "clip.mp4"
    write_mp4(video, frames, fps=6)
    out = bench["root"] / "video_pred"
    code, line, _ = run_cli(capsys, "predict", "--checkpoint", bench["ytvis_ck"], "--video", video, "--out", out, "--device", "cpu")
    assert code == 0 and line["videos"] == 1 and line["frames"] == len(frames)
    assert len(list((out / "masks").glob("*.png"))) == len(frames)
    for key in ("mp4", "gif", "tags", "instances"):
        assert (out / line["outputs"][key].split("/")[-1]).is_file()


def test_davis_prediction_is_class_agnostic(bench, capsys):
    out = bench["root"] / "davis_from_ytvis"
    code, line, _ = run_cli(capsys, "predict", "--checkpoint", bench["ytvis_ck"], "--davis", bench["davis"],
                            "--split", "val", "--out", out, "--device", "cpu")
    assert code == 0 and line["videos"] == len(DAVISDataset(bench["davis"], "val"))


def test_checkpoint_mismatch_is_a_clear_error(bench, capsys):
    args = ["--ytvis", bench["ytvis"], "--split", "valid", "--out", bench["root"] / "x.json", "--device", "cpu"]
    code, _, err = run_cli(capsys, "predict", "--checkpoint", bench["davis_ck"], *args)
    assert code == 2 and "tagvis predict: error:" in err and "classes" in err
    renamed = [dict(c, name=c["name"] + "_x") for c in bench["ytvis_dataset"].categories]
    other = smoke_checkpoint(bench["root"] / "other.pt", renamed)
    code, _, err = run_cli(capsys, "predict", "--checkpoint", other, "--ytvis", bench["ytvis"], "--split", "valid",
                           "--out", bench["root"] / "x.json", "--device", "cpu")
    assert code == 2 and "categories" in err
    code, _, err = run_cli(capsys, "predict", "--checkpoint", bench["ytvis_ck"], "--ytvis", bench["ytvis"], "--split", "valid",
                           "--out", bench["root"] / "x.json", "model.tag_dim=3")
    assert code == 2 and "inference" in err


def test_evaluate_ytvis_scores_the_predictions(bench, ytvis_results):
    metrics = pytest.importorskip("tagvis_lib.metrics")
    numbers = metrics.evaluate_ytvis(bench["ytvis"] / "valid.json", ytvis_results)
    assert all(0 <= numbers[k] <= 1 for k in ("AP", "AP50", "AP75", "AR1", "AR10"))


@pytest.mark.skipif("evaluate" not in COMMANDS, reason="tagvis evaluate is not part of this build yet")
def test_evaluate_cli_runs_on_predictions(bench, ytvis_results, capsys):
    code, line, _ = run_cli(capsys, "evaluate", "ytvis", bench["ytvis"] / "valid.json", ytvis_results)
    assert code == 0
    assert set(line) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"}
    assert all(0 <= line[k] <= 1 for k in ("AP", "AP50", "AR10"))
    out = bench["root"] / "davis_eval"
    assert main(["predict", "--checkpoint", str(bench["davis_ck"]), "--davis", str(bench["davis"]), "--split", "val",
                 "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    capsys.readouterr()
    code, line, _ = run_cli(capsys, "evaluate", "davis", bench["davis"], out, "--set", "val")
    assert code == 0
    assert all(0 <= line[k] <= 1 for k in ("J&F-Mean", "J-Mean", "F-Mean"))


@pytest.mark.parametrize("device", ["nonsense", "cuda:7", "mps"] + ([] if torch.cuda.is_available() else ["cuda"]))
def test_an_unavailable_device_is_a_clear_error_before_any_work(bench, capsys, device):
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    out = bench["root"] / f"dev_{device.replace(':', '_')}.json"
    code, _, err = run_cli(capsys, "predict", "--checkpoint", bench["ytvis_ck"], "--ytvis", bench["ytvis"],
                           "--split", "valid", "--out", out, "--device", device)
    assert code == 2 and f"device {device!r}" in err and "Traceback" not in err and not out.exists()


def test_output_policy_of_predict(bench, capsys):
    """Non-empty outputs need --overwrite, which replaces them whole; a bad location fails before any work."""
    frames_dir = bench["davis"] / "JPEGImages" / "480p" / "valid0000"
    out = bench["root"] / "policy_video"
    out.mkdir()
    (out / "old_mask.png").write_bytes(b"old")
    args = ["predict", "--checkpoint", bench["ytvis_ck"], "--video", frames_dir, "--out", out, "--device", "cpu"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "not empty" in err and "--overwrite" in err and (out / "old_mask.png").exists()
    code, line, _ = run_cli(capsys, *args, "--overwrite")
    assert code == 0 and not (out / "old_mask.png").exists() and (out / "masks").is_dir()
    assert not list(out.parent.glob(f".{out.name}.*"))  # no staging folder left behind
    # --ytvis: an existing results file is refused, the old one kept
    results = bench["root"] / "policy" / "results.json"
    results.parent.mkdir()
    results.write_text("[]")
    code, _, err = run_cli(capsys, "predict", "--checkpoint", bench["ytvis_ck"], "--ytvis", bench["ytvis"],
                           "--split", "valid", "--out", results, "--device", "cpu")
    assert code == 2 and "exists" in err and results.read_text() == "[]"
    # a location under a regular file: refused at once, naming it
    blocker = bench["root"] / "a_file"
    blocker.write_text("x")
    for mode in (["--video", frames_dir], ["--davis", bench["davis"], "--split", "val"],
                 ["--ytvis", bench["ytvis"], "--split", "valid"]):
        code, _, err = run_cli(capsys, "predict", "--checkpoint", bench["ytvis_ck"], *mode,
                               "--out", blocker / "sub" / "out.json", "--device", "cpu")
        assert code == 2 and "cannot write there" in err and "Traceback" not in err


def test_a_failed_davis_prediction_leaves_no_mixture(bench, capsys, monkeypatch):
    out = bench["root"] / "policy_davis"
    args = ["predict", "--checkpoint", bench["davis_ck"], "--davis", bench["davis"], "--split", "val", "--out", out,
            "--device", "cpu"]
    assert run_cli(capsys, *args)[0] == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    import tagvis_lib.inference as inference

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(inference, "predict_split", fail)
    code, _, err = run_cli(capsys, *args, "--overwrite")
    assert code == 130
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # the complete old output stays
    assert not list(out.parent.glob(f".{out.name}.*"))


def test_synth_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["synth", str(tmp_path), "--train-videos", "1", "--valid-videos", "0", "--test-videos", "0"]) == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "keep.txt").exists()
    assert main(["synth", str(tmp_path), "--train-videos", "1", "--valid-videos", "0", "--test-videos", "0",
                 "--height", "32", "--width", "48", "--overwrite"]) == 0
    assert not (tmp_path / "keep.txt").exists() and (tmp_path / "ytvis" / "train.json").is_file()
