"""Hostile but realistic input, one table: each case builds its input, runs the real command in a
subprocess, and checks the exit status, the one-line message (naming the file and field), the time
taken and that earlier outputs are unchanged (or the new ones complete).

The numbers in the case names are the lines of the reliability issue (14) they cover.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

pytestmark = pytest.mark.slow

#: Seconds any case may take (a command's start-up, with torch, is about 2 s on 2 cores).
CASE_SECONDS = 20.0


def tagvis(*args: str) -> list[str]:
    return [sys.executable, "-m", "tagvis_lib", *map(str, args)]


def env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def snapshot(path: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``path`` (or of ``path`` itself)."""
    if path.is_file():
        return {".": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny benchmark, smoke checkpoints, predictions of both kinds, a video, and a trained run."""
    import torch

    from tagvis_lib.cli import main
    from tagvis_lib.config import apply_overrides, profile_config
    from tagvis_lib.data.davis import DAVIS_CATEGORIES
    from tagvis_lib.data.ytvis import YTVISDataset
    from tagvis_lib.model import build_model, save_checkpoint

    root = tmp_path_factory.mktemp("hostile")
    assert main(["synth", str(root / "synth"), "--train-videos", "3", "--valid-videos", "2", "--test-videos", "0",
                 "--height", "48", "--width", "80"]) == 0
    ytvis, davis = root / "synth" / "ytvis", root / "synth" / "DAVIS"
    valid = YTVISDataset(ytvis, "valid")

    def checkpoint(path, categories):
        torch.manual_seed(0)
        cfg = apply_overrides(profile_config("smoke"), {"model.num_classes": len(categories)})
        save_checkpoint(path, build_model(cfg.model), cfg, categories)
        return path

    ck, davis_ck = checkpoint(root / "ytvis.pt", valid.categories), checkpoint(root / "davis.pt", DAVIS_CATEGORIES)
    base = ["--device", "cpu", "--no-progress"]
    assert main(["predict", "--checkpoint", str(ck), "--ytvis", str(ytvis), "--split", "valid",
                 "--out", str(root / "pred" / "results.json"), *base]) == 0
    assert main(["predict", "--checkpoint", str(davis_ck), "--davis", str(davis), "--split", "val",
                 "--out", str(root / "davis_pred"), *base]) == 0
    assert main(["train", "--ytvis", str(ytvis), "--profile", "smoke", "--out", str(root / "run"), "--no-progress",
                 "train.max_steps=2", "train.checkpoint_every=1"]) == 0
    return {"root": root, "ytvis": ytvis, "davis": davis, "ck": ck, "davis_ck": davis_ck,
            "results": root / "pred" / "results.json", "davis_results": root / "davis_pred", "run": root / "run",
            "frames": valid.load(0).frames}


@dataclass
class Case:
    """``build(world, tmp) -> argv``; ``after(world, tmp, stdout)`` checks the outputs."""

    name: str
    build: Callable[[dict, Path], list[str]]
    code: int
    message: str  #: regex the stderr must match (one line for errors)
    after: Callable[[dict, Path, str], None] | None = None
    stderr_lines: int | None = 1  #: None: any number (warnings of a successful command)


def _results_with(world, tmp, change) -> Path:
    """A copy of the valid predictions with ``change(entries)`` applied, at ``tmp/results.json``."""
    entries = json.loads(world["results"].read_text())
    change(entries)
    path = tmp / "results.json"
    path.write_text(json.dumps(entries))
    return path


def _first_counts(entries) -> tuple[int, int]:
    """(entry, frame) of the first non-null segmentation."""
    for i, e in enumerate(entries):
        for t, seg in enumerate(e["segmentations"]):
            if seg:
                return i, t
    raise AssertionError("no segmentation in the predictions")


def _set_counts(value_of):
    def change(entries):
        i, t = _first_counts(entries)
        entries[i]["segmentations"][t]["counts"] = value_of(entries[i]["segmentations"][t])
    return change


def _wider_counts(seg):
    from tagvis_lib.data.ytvis import encode_rle

    h, w = seg["size"]
    return encode_rle(np.zeros((h, w + 1), bool))["counts"]


def _eval_ytvis(world, tmp, change):
    return tagvis("evaluate", "ytvis", world["ytvis"] / "valid.json", _results_with(world, tmp, change))


def _set_polygon(entries):
    i, t = _first_counts(entries)
    entries[i]["segmentations"][t] = [[1, 2, 3]]


def _unknown_category(entries):
    entries.append({**entries[0], "category_id": 987, "score": 0.99})


def _same_ap(world, tmp, stdout):
    from tagvis_lib.metrics import evaluate_ytvis

    official = evaluate_ytvis(world["ytvis"] / "valid.json", world["results"])
    assert json.loads(stdout.strip().splitlines()[-1])["AP"] == pytest.approx(official["AP"])


def _zip_results(world, tmp):
    return tagvis("evaluate", "ytvis", world["ytvis"] / "valid.json", world["results"].with_suffix(".zip"))


def _davis_jpeg_as_png(world, tmp):
    from PIL import Image

    res = tmp / "davis_res"
    shutil.copytree(world["davis_results"], res)
    png = sorted(res.rglob("*.png"))[0]
    Image.open(png).convert("RGB").save(png, format="JPEG")
    return tagvis("evaluate", "davis", world["davis"], res, "--set", "val")


def _video(world, tmp, name, fmt, options, cut: float | None):
    import av

    path = tmp / name
    frames = world["frames"]
    with av.open(str(path), mode="w", format=fmt, options=options) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    if cut:  # keep this fraction of the bytes
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
    return path


def _predict_truncated(name, fmt, options, cut):
    def build(world, tmp):
        video = _video(world, tmp, name, fmt, options, cut)
        return tagvis("predict", "--checkpoint", world["ck"], "--video", video, "--out", tmp / "out", "--device", "cpu")
    return build


def _decode_reported(world, tmp, stdout):
    line = json.loads(stdout.strip().splitlines()[-1])
    assert line["decode"]["declared_frames"] == len(world["frames"])
    assert 0 < line["decode"]["decoded_frames"] < len(world["frames"])


def _predict_video_into_used_folder(world, tmp):
    out = tmp / "out"
    out.mkdir()
    (out / "00099.png").write_bytes(b"an earlier, longer video's mask")
    video = _video(world, tmp, "v.mp4", "mp4", {}, cut=None)
    return tagvis("predict", "--checkpoint", world["ck"], "--video", video, "--out", out, "--device", "cpu")


def _unchanged_file(world, tmp, stdout):
    assert (tmp / "out" / "00099.png").read_bytes() == b"an earlier, longer video's mask"
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["00099.png"]


def _predict_davis_into_used_folder(world, tmp):
    out = tmp / "out"
    shutil.copytree(world["davis_results"], out)
    return _predict(world, out, "--device", "cpu", davis=True)


def _same_as_davis_results(world, tmp, stdout):
    assert snapshot(tmp / "out") == snapshot(world["davis_results"])


def _predict(world, out, *extra, checkpoint=None, davis=False):
    """``tagvis predict`` of the valid split (DAVIS val with ``davis``) into ``out``."""
    data = ("--davis", world["davis"], "--split", "val") if davis else ("--ytvis", world["ytvis"], "--split", "valid")
    ck = checkpoint or world["davis_ck" if davis else "ck"]
    return tagvis("predict", "--checkpoint", ck, *data, "--out", out, *extra)


def _predict_ytvis_over_results(world, tmp):
    out = tmp / "results.json"
    shutil.copy(world["results"], out)
    return _predict(world, out, "--device", "cpu")


def _same_results(world, tmp, stdout):
    assert (tmp / "results.json").read_bytes() == world["results"].read_bytes()
    assert not (tmp / "results.zip").exists()


def _predict_under_a_file(world, tmp):
    (tmp / "plain").write_text("a regular file")
    return _predict(world, tmp / "plain" / "results.json", "--device", "cpu")


def _predict_with(*extra):
    def build(world, tmp):
        return _predict(world, tmp / "results.json", *extra)
    return build


def _nothing_written(world, tmp, stdout):
    assert sorted(p.name for p in tmp.iterdir() if not p.name.startswith("_")) in ([], ["plain"], ["notes.txt"]), \
        list(tmp.iterdir())


def _text_checkpoint(world, tmp):
    (tmp / "notes.txt").write_text("not a checkpoint")
    return _predict(world, tmp / "results.json", "--device", "cpu", checkpoint=tmp / "notes.txt")


def _checkpoint_with_bad_config(world, tmp):
    import torch

    ckpt = torch.load(world["ck"], weights_only=True)
    ckpt["config"]["inference"]["grouping"] = "bogus"
    torch.save(ckpt, tmp / "_bad.pt")
    return _predict(world, tmp / "results.json", "--device", "cpu", checkpoint=tmp / "_bad.pt")


def _synth_over_dataset(world, tmp):
    shutil.copytree(world["root"] / "synth", tmp / "synth")
    return tagvis("synth", tmp / "synth", "--train-videos", "2", "--valid-videos", "1", "--height", "48", "--width", "80")


def _synth_unchanged(world, tmp, stdout):
    assert snapshot(tmp / "synth") == snapshot(world["root"] / "synth")


def _stale_frames(world, tmp):
    ytvis = tmp / "ytvis"
    shutil.copytree(world["ytvis"], ytvis)
    folder = sorted((ytvis / "valid" / "JPEGImages").iterdir())[0]
    shutil.copy(sorted(folder.iterdir())[0], folder / "99999.jpg")
    return tagvis("data-check", "--ytvis", ytvis, "--split", "valid")


def _split_twice(world, tmp):
    ytvis = tmp / "ytvis"
    ytvis.mkdir()
    shutil.copy(world["ytvis"] / "train.json", ytvis / "train.json")
    (ytvis / "train").symlink_to(world["ytvis"] / "train")
    assert subprocess.run(tagvis("split", ytvis, "--holdout", "0.34"), env=env(), capture_output=True).returncode == 0
    (tmp / "_first").write_bytes((ytvis / "train_sub.json").read_bytes())
    return tagvis("split", ytvis, "--holdout", "0.5", "--seed", "3")


def _split_unchanged(world, tmp, stdout):
    assert (tmp / "ytvis" / "train_sub.json").read_bytes() == (tmp / "_first").read_bytes()


def _train(world, tmp, *overrides, ytvis=None):
    return tagvis("train", "--ytvis", ytvis or world["ytvis"], "--profile", "smoke", "--out", tmp / "run",
                  "--no-progress", *overrides)


def _missing_frame(world, tmp):
    ytvis = tmp / "ytvis"
    shutil.copytree(world["ytvis"], ytvis)
    data = json.loads((ytvis / "train.json").read_text())
    (ytvis / "train" / "JPEGImages" / data["videos"][1]["file_names"][-1]).unlink()
    return _train(world, tmp, ytvis=ytvis)


def _no_run_folder(world, tmp, stdout):
    assert not (tmp / "run").exists()


def _resume_changed(world, tmp):
    shutil.copytree(world["run"], tmp / "run")
    (tmp / "_config").write_bytes((tmp / "run" / "config.json").read_bytes())
    return _train(world, tmp, "--resume", "train.lr=0.5", "loss.margin=2")


def _config_unchanged(world, tmp, stdout):
    assert (tmp / "run" / "config.json").read_bytes() == (tmp / "_config").read_bytes()


CASES = [
    Case("1 rle counts longer than h x w", lambda w, t: _eval_ytvis(w, t, _set_counts(lambda s: s["counts"] + "5")),
         2, r"results\.json: \[\d+\]\.segmentations\[\d+\]\.counts"),
    Case("1 rle counts shorter than h x w", lambda w, t: _eval_ytvis(w, t, _set_counts(lambda s: s["counts"][:-2] or "0")),
         2, r"results\.json: \[\d+\]\.segmentations\[\d+\]\.counts"),
    Case("2 garbage counts", lambda w, t: _eval_ytvis(w, t, _set_counts(lambda s: "garbage!!")),
         2, r"results\.json: \[\d+\]\.segmentations\[\d+\]\.counts"),
    Case("2 counts of a wider mask", lambda w, t: _eval_ytvis(w, t, _set_counts(_wider_counts)),
         2, r"results\.json: \[\d+\]\.segmentations\[\d+\]\.counts"),
    Case("3 bad polygon", lambda w, t: _eval_ytvis(w, t, _set_polygon),
         2, r"results\.json: \[\d+\]\.segmentations\[\d+\].*polygon"),
    Case("4 unknown category warns and keeps the official AP", lambda w, t: _eval_ytvis(w, t, _unknown_category),
         0, r"warning: .*1 result\(s\).*category_id 987", after=_same_ap, stderr_lines=None),
    Case("5 results path is a directory", lambda w, t: tagvis("evaluate", "ytvis", w["ytvis"] / "valid.json", t),
         2, r"is a directory"),
    Case("5 results zip of predict is read", _zip_results, 0, r"^$", after=_same_ap, stderr_lines=0),
    Case("6 davis jpeg under a png name", _davis_jpeg_as_png, 2, r"\.png.*(JPEG|not a PNG)"),
    Case("7 truncated faststart mp4 warns", _predict_truncated("cut.mp4", "mp4", {"movflags": "faststart"}, 0.5),
         0, r"warning: .*cut\.mp4: decoded \d+ frames of the \d+ the file declares", after=_decode_reported,
         stderr_lines=None),
    Case("7 truncated mkv warns", _predict_truncated("cut.mkv", "matroska", {}, 0.75),
         0, r"warning: .*cut\.mkv: decoded \d+ frames of the \d+ the file declares", after=_decode_reported,
         stderr_lines=None),
    Case("7 a video cut before its first frame fails", _predict_truncated("cut.mkv", "matroska", {}, 0.3),
         2, r"cut\.mkv: video stream: no decodable frame", after=lambda w, t, out: None),
    Case("8 --video into an earlier video's folder", _predict_video_into_used_folder, 2, r"--overwrite",
         after=_unchanged_file),
    Case("9 --davis into an earlier run's folder", _predict_davis_into_used_folder, 2, r"--overwrite",
         after=_same_as_davis_results),
    Case("10 --ytvis over an earlier results.json", _predict_ytvis_over_results, 2, r"results\.json.*--overwrite",
         after=_same_results),
    Case("11 --out under a regular file", _predict_under_a_file, 2, r"plain", after=_nothing_written),
    Case("12 unavailable device", _predict_with("--device", "cuda:5"), 2, r"cuda:5.*not available",
         after=_nothing_written),
    Case("12 nonsense device", _predict_with("--device", "nonsense"), 2, r"nonsense", after=_nothing_written),
    Case("13 clip_length=0 at inference", _predict_with("--device", "cpu", "inference.clip_length=0"), 2,
         r"inference\.clip_length", after=_nothing_written),
    Case("14 text file as checkpoint", _text_checkpoint, 2, r"notes\.txt", after=_nothing_written),
    Case("14 bad value in a checkpoint's config", _checkpoint_with_bad_config, 2,
         r"_bad\.pt: config: inference\.grouping.*stored in the checkpoint", after=_nothing_written),
    Case("15 synth over a dataset", _synth_over_dataset, 2, r"synth.*--overwrite", after=_synth_unchanged),
    Case("15 data-check sees frames the JSON does not list", _stale_frames, 2, r"JPEGImages.*99999\.jpg"),
    Case("16 split twice", _split_twice, 2, r"train_sub\.json.*--overwrite", after=_split_unchanged),
    Case("17 listed frame missing on disk", _missing_frame, 2, r"train\.json: videos\[1\]\.file_names\[\d+\]",
         after=_no_run_folder),
    Case("18 bad inference field at train start", lambda w, t: _train(w, t, "inference.grouping=bogus"), 2,
         r"inference\.grouping", after=_no_run_folder),
    Case("19 clip_length=0 at train start", lambda w, t: _train(w, t, "data.clip_length=0"), 2,
         r"data\.clip_length", after=_no_run_folder),
    Case("20 resume with a changed lr and margin", _resume_changed, 2, r"train\.lr.*loss\.margin|loss\.margin.*train\.lr",
         after=_config_unchanged),
    Case("20 resume of a folder that does not exist", lambda w, t: _train(w, t, "--resume"), 2,
         r"checkpoint_last\.pt", after=_no_run_folder),
    Case("22 reproduce --only with no notebook", lambda w, t: tagvis("reproduce", "--only", "zz99", "--runs", t / "r",
                                                                  "--figures", t / "f"), 2, r"--only zz99"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(world, tmp_path, case):
    argv = case.build(world, tmp_path)
    start = time.monotonic()
    proc = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    err = proc.stderr.strip()
    assert proc.returncode == case.code, f"exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not re.search(r"weights_only\W{0,20}(set to )?\W?False", proc.stderr), proc.stderr  # never that advice
    if case.stderr_lines is not None:
        assert len(err.splitlines()) == case.stderr_lines, proc.stderr
    assert re.search(case.message, err), f"{case.message!r} not in:\n{proc.stderr}"
    if case.code == 2:
        assert err.startswith("tagvis "), err  # "tagvis <command>: error: <file>: <field>: ..."
    assert seconds < CASE_SECONDS, f"took {seconds:.1f} s"
    if case.after:
        case.after(world, tmp_path, proc.stdout)


def test_21_ctrl_c_in_training_is_one_line_and_resumes(world, tmp_path):
    shutil.copytree(world["ytvis"], tmp_path / "ytvis", symlinks=True)
    run = tmp_path / "run"
    cmd = _train(world, tmp_path, "train.max_steps=400", "train.log_every=1", "train.checkpoint_every=1")
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (run / "checkpoint_last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(r"interrupted at step \d+.*checkpoint.*--resume", err), err
    assert not list(run.glob("*.tmp*")), list(run.iterdir())  # no half-written file left
