"""Training speed per profile and device: seconds per step, steps/s, clips/s, and the epoch and run
time they imply on the embedded synthetic benchmark.

Writes the benchmark (default: ``tagvis synth`` defaults, 40 train videos of 96x160) into a temporary
folder, or uses ``--ytvis ROOT``; then, for every profile and device, runs the real training loop
(:func:`tagvis_lib.training.train`, data loading included) for ``--warmup + --steps`` optimiser steps
and times the last ``--steps`` from the metrics log. "epoch s" = steps per epoch x s/step; "run min"
= the profile's steps (its epochs, capped by max_steps) x s/step, validation not included; the
first steps (oneDNN set-up, several seconds on a CPU) are excluded too. Devices: the CPU, plus CUDA when present.

    python benchmarks/train_speed.py [--profiles smoke cpu] [--steps 20] [--warmup 3] [--threads N] [KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch

from tagvis_lib.config import apply_overrides, profile_config
from tagvis_lib.data import YTVISDataset, write_benchmark
from tagvis_lib.training import read_metrics, train


def time_profile(profile: str, device: str, ytvis: Path, steps: int, warmup: int, out: Path,
                 overrides: list[str]) -> dict[str, float]:
    """Run ``warmup + steps`` steps of ``profile`` (with ``overrides``) on ``device``; timings of the last ``steps``."""
    full = apply_overrides(profile_config(profile), overrides)
    cfg = apply_overrides(full, {
        "train.device": device, "train.max_steps": warmup + steps, "train.epochs": 10**6,
        "train.log_every": 1, "train.val_every": 0,
    })
    train(cfg, ytvis_root=ytvis, out_dir=out, progress=False)
    rows = read_metrics(out / "metrics.jsonl", "train")
    seconds = (rows[-1]["time"] - rows[warmup - 1]["time"]) / steps
    steps_per_epoch = math.ceil(len(YTVISDataset(ytvis, "train")) / full.train.batch_size)
    total_steps = full.train.epochs * steps_per_epoch
    if full.train.max_steps is not None:
        total_steps = min(total_steps, full.train.max_steps)
    return {"s_per_step": seconds, "steps_per_s": 1 / seconds, "clips_per_s": full.train.batch_size / seconds,
            "steps_per_epoch": steps_per_epoch, "epoch_s": steps_per_epoch * seconds,
            "run_min": total_steps * seconds / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["smoke", "cpu"], help="profiles to time")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--ytvis", type=Path, default=None, help="YouTube-VIS root (default: generate the benchmark)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every profile")
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory(prefix="tagvis-train-speed-") as tmp:
        ytvis = args.ytvis or write_benchmark(Path(tmp) / "synth")["ytvis"]
        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, data {ytvis}")
        header = ("profile", "device", "s/step", "steps/s", "clips/s", "steps/epoch", "epoch s", "run min")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for profile in args.profiles:
            for device in devices:
                out = Path(tmp) / f"{profile}-{device}"
                r = time_profile(profile, device, ytvis, args.steps, args.warmup, out, args.overrides)
                print(f"| {profile} | {device} | {r['s_per_step']:.3f} | {r['steps_per_s']:.2f} | {r['clips_per_s']:.2f} "
                      f"| {r['steps_per_epoch']} | {r['epoch_s']:.1f} | {r['run_min']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
