"""DDP: two gloo processes with batch 1 take the same steps as one process with batch 2."""
import subprocess

import pytest
import torch
from training_helpers import DETERMINISTIC, final_weights, subprocess_env, tagvis_cmd, torchrun_cmd

from tagvis_lib.training import read_metrics

#: BatchNorm frozen (running statistics fixed) so a clip's output does not depend on its batch
#: neighbours; 2 epochs of the 4-video benchmark = 4 steps of 2 clips.
COMMON = ["--profile", "smoke", "--no-progress", "train.epochs=2", "train.batchnorm=frozen", *DETERMINISTIC]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(synth_benchmark, tmp_path):
    data = ["--ytvis", str(synth_benchmark["ytvis"])]
    one, two = tmp_path / "one", tmp_path / "two"
    # One process, batch 2, one clip per forward/backward pass (what each DDP rank does).
    subprocess.run(tagvis_cmd("train", *data, "--out", str(one), *COMMON, "train.batch_size=2", "train.micro_batch=1"),
                   check=True, env=subprocess_env(), capture_output=True, timeout=120)
    done = subprocess.run(torchrun_cmd(2, "train", *data, "--out", str(two), *COMMON, "train.batch_size=1"),
                          env=subprocess_env(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    rows_one, rows_two = read_metrics(one / "metrics.jsonl", "train"), read_metrics(two / "metrics.jsonl", "train")
    assert [r["step"] for r in rows_two] == [r["step"] for r in rows_one] == [1, 2, 3, 4]
    for a, b in zip(rows_one, rows_two):
        for term in ("spectra", "specter", "tempra", "temper", "ce", "total"):
            assert b[term] == pytest.approx(a[term], rel=1e-6, abs=1e-9), (a["step"], term)
    assert rows_two[-1]["clips_per_s"] > 0
    w1, w2 = final_weights(one), final_weights(two)
    assert w1.keys() == w2.keys()
    for key in w1:  # stated tolerance: 1e-6 relative to the tensor's largest value (measured: bitwise equal)
        torch.testing.assert_close(w2[key], w1[key], rtol=0, atol=1e-6 * float(w1[key].abs().max().clamp(min=1e-3)))
    # only rank 0 writes: one line per step, one checkpoint
    assert not list(two.glob(".*.tmp")) and (two / "checkpoint_last.pt").exists()
