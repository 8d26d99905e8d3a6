"""tagvis ablate / tagvis_lib.training.sweep: rows x seeds as jobs, reused on a rerun, inline, local and SLURM."""
import json
import os

import pytest

from tagvis_lib.cli import main
from tagvis_lib.training.sweep import LauncherConfig, collect, finished, make_jobs, read_results, run_jobs

pytestmark = pytest.mark.slow
ROWS = ["Ours", "L_spectra"]


def _jobs(synth_benchmark, out, seeds=(0,), **kw):
    return make_jobs(ROWS, list(seeds), out, "smoke", synth_benchmark["davis"], "train", "val",
                     budget={"train.max_steps": 1}, device="cpu", **kw)


def test_jobs_cover_rows_by_seeds_and_refuse_bad_input(tmp_path, synth_benchmark):
    jobs = _jobs(synth_benchmark, tmp_path, seeds=(0, 1))
    assert [(j.row, j.seed) for j in jobs] == [("Ours", 0), ("Ours", 1), ("L_spectra", 0), ("L_spectra", 1)]
    assert jobs[3].run_dir == tmp_path / "l_spectra" / "seed1"
    cfg = jobs[3].config()
    assert cfg.train.seed == 1 and cfg.loss.spectra_weight == 0.0 and cfg.train.max_steps == 1
    assert jobs[1].config().to_dict()["loss"] != cfg.to_dict()["loss"]
    with pytest.raises(KeyError, match="not in Table III"):
        make_jobs(["w/o everything"], [0], tmp_path, "smoke", "d", "train", "val")
    with pytest.raises(ValueError, match="distinct"):
        make_jobs(ROWS, [0, 0], tmp_path, "smoke", "d", "train", "val")


def test_inline_sweep_writes_records_and_reuses_them(tmp_path, synth_benchmark):
    jobs = _jobs(synth_benchmark, tmp_path)
    done = run_jobs(jobs)
    assert done["reused"] == 0 and [(r["row"], r["seed"], r["steps"]) for r in done["records"]] == [
        ("Ours", 0, 1), ("L_spectra", 0, 1)]
    records = read_results(tmp_path)
    assert [r["row"] for r in records] == ["L_spectra", "Ours"] and "config" not in records[0]  # paper order
    assert 0.0 <= records[0]["metrics"]["J&F-Mean"] <= 1.0 and records[0]["eval_split"] == "val"
    stamp = os.stat(jobs[0].run_dir / "model_final.pt").st_mtime_ns
    again = run_jobs(jobs)
    assert again["reused"] == 2 and os.stat(jobs[0].run_dir / "model_final.pt").st_mtime_ns == stamp
    # another budget is another job: not reused, and refused by the run folder it would reuse
    longer = make_jobs(["Ours"], [0], tmp_path, "smoke", synth_benchmark["davis"], "train", "val",
                       budget={"train.max_steps": 2}, device="cpu")
    assert finished(longer[0]) is None


def test_two_smoke_rows_on_submitits_local_executor(tmp_path, synth_benchmark):
    jobs = _jobs(synth_benchmark, tmp_path / "sweep", threads=1)
    done = run_jobs(jobs, LauncherConfig("local", cpus_per_task=2, max_parallel=2, timeout_min=10))
    assert [r["row"] for r in done["records"]] == ROWS and done["reused"] == 0
    assert [r["threads"] for r in done["records"]] == [1, 1]  # the job's own setting, not OMP_NUM_THREADS=2
    assert list((tmp_path / "sweep" / "submitit").glob("*_result.pkl"))  # ran as submitit jobs
    assert json.loads(collect(tmp_path / "sweep").read_text()) == read_results(tmp_path / "sweep")


def test_slurm_submission_without_a_cluster(tmp_path, synth_benchmark, monkeypatch, capsys):
    """A fake sbatch on PATH records the script submitit would submit; nothing waits for it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path / "submitted.sh"}\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "sweep"
    code = main(["ablate", "--davis", str(synth_benchmark["davis"]), "--out", str(out), "--rows", *ROWS,
                 "--seeds", "0", "1", "2", "--profile", "smoke", "--launcher", "slurm", "--partition", "gpu",
                 "--gpus", "1", "--cpus", "8", "--time-min", "90", "--max-parallel", "4", "--no-wait",
                 "train.max_steps=2"])
    assert code == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["submitted"] == [f"4242_{i}" for i in range(6)] and last["finished"] == 0
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("#SBATCH --array=0-5%4", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --time=90"):
        assert line in script, script
    assert "submitit.core._submit" in script


def test_ablate_refuses_bad_settings_before_launching(tmp_path, synth_benchmark, capsys):
    base = ["ablate", "--davis", str(synth_benchmark["davis"]), "--out", str(tmp_path / "s"), "--profile", "smoke",
            "--launcher", "inline"]
    assert main(base + ["--rows", "w/o everything"]) == 2
    assert "not in Table III" in capsys.readouterr().err
    assert main(base + ["data.clip_length=0"]) == 2
    assert "data.clip_length" in capsys.readouterr().err
    assert main(base + ["--eval-split", "nope"]) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    (tmp_path / "plain").write_text("a regular file")
    under_a_file = [a if a != str(tmp_path / "s") else str(tmp_path / "plain" / "s") for a in base]
    assert main(under_a_file + ["train.max_steps=1"]) == 2
    assert "plain/s/results.json: cannot write there" in capsys.readouterr().err
