"""Nothing lost: a run killed with SIGKILL mid-epoch resumes to the very weights of an uninterrupted run."""
import json
import signal
import subprocess
import time

import pytest
import torch
from training_helpers import DETERMINISTIC, final_weights, subprocess_env, tagvis_cmd

from tagvis_lib.model import load_checkpoint
from tagvis_lib.model.precision import has_bf16
from tagvis_lib.training import read_metrics

#: 3 epochs of 4 steps (4 training videos, batch 1), a checkpoint after every step.
SETTINGS = ["--profile", "smoke", "--no-progress", "train.epochs=3", "train.checkpoint_every=1", *DETERMINISTIC]


def logged_step(path) -> int:
    try:
        rows = read_metrics(path, "train")
    except FileNotFoundError:
        return 0
    return rows[-1]["step"] if rows else 0


#: The smoke profile as it is (fp32, contiguous), and with the cpu profile's precision and memory format.
PRECISIONS = [
    pytest.param([], id="fp32"),
    pytest.param(["train.precision=bf16", "model.memory_format=channels_last_3d"], id="bf16-channels_last_3d",
                 marks=pytest.mark.skipif(not has_bf16(torch.device("cpu")), reason="this CPU has no bf16")),
    pytest.param(["train.ema_decay=0.9"], id="fp32-weight-average"),
]


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(synth_benchmark, tmp_path, precision):
    data = ["--ytvis", str(synth_benchmark["ytvis"])]
    settings = [*SETTINGS, *precision]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    env = subprocess_env()
    subprocess.run(tagvis_cmd("train", *data, "--out", str(ref), *settings), check=True, env=env,
                   capture_output=True, timeout=120)

    cmd = tagvis_cmd("train", *data, "--out", str(killed), *settings)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The line of step s is written just before checkpoint s: once line 6 is there, the checkpoint is
    # at step 5..7 (epoch 2, positions 1..3) until the epoch-end checkpoint of step 8.
    deadline = time.monotonic() + 120
    while logged_step(killed / "metrics.jsonl") < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(killed / "checkpoint_last.pt")
    assert 0 < state["step"] < 12 and not (killed / "model_final.pt").exists()
    assert state["epoch"] == 1 and state["step_in_epoch"] > 0, "expected the kill in the middle of epoch 2"

    subprocess.run(cmd + ["--resume"], check=True, env=env, capture_output=True, timeout=120)
    w_ref, w_resumed = final_weights(ref), final_weights(killed)
    assert all(torch.equal(w_ref[k], w_resumed[k]) for k in w_ref)
    assert [r["step"] for r in read_metrics(killed / "metrics.jsonl", "train")] == list(range(1, 13))
    rows_ref = read_metrics(ref / "metrics.jsonl", "train")
    rows_resumed = read_metrics(killed / "metrics.jsonl", "train")
    assert [r["total"] for r in rows_ref] == [r["total"] for r in rows_resumed]
    assert json.loads((killed / "config.json").read_text()) == json.loads((ref / "config.json").read_text())


def test_ctrl_c_prints_one_line_with_the_step_and_how_to_resume(synth_benchmark, tmp_path):
    run = tmp_path / "run"
    cmd = tagvis_cmd("train", "--ytvis", str(synth_benchmark["ytvis"]), "--out", str(run), *SETTINGS)
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while logged_step(run / "metrics.jsonl") < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "interrupted at step" in lines[0] and "--resume" in lines[0] and "checkpoint" in lines[0]
    resumed = subprocess.run(cmd + ["--resume"], env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
