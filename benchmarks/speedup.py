"""This tree against a baseline revision, side by side in one run: training clips/s and ``tagvis
predict`` frames/s at the cpu profile, for the same work.

The baseline revision is checked out with ``git worktree`` into a temporary folder. Rounds alternate
baseline and current, so that the drifts of a shared machine hit both alike; the table gives the
median over the rounds and the ratio current / baseline.

- Training: ``tagvis train --profile cpu`` of each tree (its own cpu profile: same network, clip
  shape and batch; the current one adds its precision, memory format and loader settings) for
  ``--warmup + --steps`` steps on the embedded benchmark; s/step from the metrics log over the last
  ``--steps`` steps (epoch-end checkpoints included), clips/s = batch / (s/step).
- Prediction: the same weights (trained by the baseline for ``--ckpt-steps`` steps, or
  ``--checkpoint``) predicted on the valid split by each tree's ``tagvis predict``. The current
  tree's copy of the checkpoint carries the current cpu profile's ``model.memory_format`` and
  ``inference.precision``. Figures: end-to-end video frames/s as each tree reports it (baseline
  ``end_to_end_fps``, current ``video_fps``) and the process wall time of the command.

    python benchmarks/speedup.py [--baseline 62a624d] [--rounds 3] [--steps 20] [--warmup 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
#: The last commit before the precision / memory-format work (issue 11).
DEFAULT_BASELINE = "62a624d"


def tagvis(tree: Path, *args: str) -> tuple[str, float]:
    """Run ``python -m tagvis_lib ARGS`` with ``tree`` first on the path; (stdout, wall seconds)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tagvis_lib", *args], cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{tree}: tagvis {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout, seconds


def check_import(tree: Path) -> None:
    """Fail unless ``tree``'s own ``tagvis_lib`` is the one imported there."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    where = subprocess.run([sys.executable, "-c", "import tagvis_lib; print(tagvis_lib.__file__)"], cwd=tree, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"{tree} imports tagvis_lib from {where}")


def train_s_per_step(tree: Path, ytvis: Path, out: Path, steps: int, warmup: int) -> float:
    """Seconds per step of ``tree``'s cpu profile over the last ``steps`` of ``warmup + steps``."""
    tagvis(tree, "train", "--ytvis", str(ytvis), "--split", "train", "--profile", "cpu", "--out", str(out), "--no-progress",
           f"train.max_steps={warmup + steps}", "train.log_every=1")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("event") == "train"]
    return (rows[-1]["time"] - rows[warmup - 1]["time"]) / steps


def predict_fps(tree: Path, checkpoint: Path, ytvis: Path, out: Path) -> tuple[float, float, dict]:
    """(video frames/s as the tree reports it, process wall seconds, the printed line)."""
    stdout, seconds = tagvis(tree, "predict", "--checkpoint", str(checkpoint), "--ytvis", str(ytvis), "--split", "valid",
                             "--out", str(out), "--device", "cpu", "--no-progress")
    line = json.loads(stdout.strip().splitlines()[-1])
    return float(line.get("video_fps", line.get("end_to_end_fps"))), seconds, line


def current_checkpoint(src: Path, dst: Path) -> None:
    """Copy ``src`` with the current cpu profile's memory format and inference precision in its config."""
    from tagvis_lib.config import profile_config

    cpu = profile_config("cpu")
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    ckpt["config"]["model"]["memory_format"] = cpu.model.memory_format
    ckpt["config"]["inference"]["precision"] = cpu.inference.precision
    torch.save(ckpt, dst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    parser.add_argument("--ckpt-steps", type=int, default=200, help="steps of the baseline checkpoint for prediction")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a baseline-readable checkpoint instead")
    args = parser.parse_args()
    from tagvis_lib.config import profile_config
    from tagvis_lib.data import write_benchmark

    with tempfile.TemporaryDirectory(prefix="tagvis-speedup-") as tmp:
        tmp = Path(tmp)
        base = tmp / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(base), args.baseline],
                       check=True, capture_output=True)
        try:
            trees = {"baseline": base, "current": ROOT}
            for tree in trees.values():
                check_import(tree)
            ytvis = write_benchmark(tmp / "synth")["ytvis"]
            ckpt = args.checkpoint
            if ckpt is None:
                tagvis(base, "train", "--ytvis", str(ytvis), "--split", "train", "--profile", "cpu", "--out",
                       str(tmp / "ckpt"), "--no-progress", f"train.max_steps={args.ckpt_steps}")
                ckpt = tmp / "ckpt" / "model_final.pt"
            checkpoints = {"baseline": ckpt, "current": tmp / "current.pt"}
            current_checkpoint(ckpt, checkpoints["current"])
            cpu = profile_config("cpu")
            batch = cpu.train.batch_size
            print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; baseline {args.baseline}, current {ROOT}; "
                  f"{args.rounds} alternating rounds")
            print(f"current cpu profile: train.precision={cpu.train.precision}, model.memory_format={cpu.model.memory_format}, "
                  f"data.num_workers={cpu.data.num_workers}, inference.precision={cpu.inference.precision}")
            results = {name: {"train": [], "fps": [], "wall": []} for name in trees}
            for r in range(args.rounds):
                for name, tree in trees.items():
                    s = train_s_per_step(tree, ytvis, tmp / f"train-{name}-{r}", args.steps, args.warmup)
                    fps, wall, _ = predict_fps(tree, checkpoints[name], ytvis, tmp / f"pred-{name}-{r}")
                    for key, value in (("train", batch / s), ("fps", fps), ("wall", wall)):
                        results[name][key].append(value)
                    print(f"round {r + 1} {name:8s}: {batch / s:6.2f} clips/s, predict {fps:6.1f} video fps, "
                          f"{wall:5.1f} s wall", flush=True)
            med = {n: {k: statistics.median(v) for k, v in res.items()} for n, res in results.items()}
            print()
            print("| figure (median of rounds) | baseline | current | current / baseline |")
            print("|---|---|---|---|")
            for key, label in (("train", "training clips/s"), ("fps", "predict video frames/s"),
                               ("wall", "predict process wall s")):
                b, c = med["baseline"][key], med["current"][key]
                print(f"| {label} | {b:.2f} | {c:.2f} | {c / b:.2f}x |")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)


if __name__ == "__main__":
    main()
