"""CPU training throughput by how the cores are used, side by side in one run: one process with all
threads against data-parallel processes (gloo DDP through ``torchrun``) with one thread each.

Both run this tree's ``tagvis train --profile cpu`` on the embedded benchmark with the same global
batch (the profile's ``train.batch_size``): the single process takes the whole batch with
``--threads`` intra-op threads; the DDP run starts ``--threads`` processes of one thread each, every
process ``batch_size / threads`` clips. Rounds alternate the two, so the drifts of a shared machine
hit both alike; the table gives the median clips/s over rounds (global batch / s per step, over the
last ``--steps`` of ``--warmup + --steps`` steps, epoch-end checkpoints included) and the ratio.

The two are not the same computation: PyTorch's SyncBatchNorm has no CPU kernel, so under DDP on the
CPU each process normalises by its own clips' statistics (a batch of 1 clip at the cpu profile).

    python benchmarks/cpu_processes.py [--threads 2] [--rounds 3] [--steps 40] [--warmup 10]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def s_per_step(out: Path, steps: int, warmup: int) -> float:
    """Seconds per step over the last ``steps`` train rows of ``out/metrics.jsonl``."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("event") == "train"]
    return (rows[-1]["time"] - rows[warmup - 1]["time"]) / steps


def run(command: list[str], threads: int) -> None:
    """Run ``command`` with ``threads`` OpenMP threads per process; raise with its stderr on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="cores to use: threads of the single process, "
                        "processes of the DDP run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    args = parser.parse_args()
    from tagvis_lib.config import profile_config
    from tagvis_lib.data import write_benchmark

    batch = profile_config("cpu").train.batch_size
    if batch % args.threads:
        parser.error(f"the cpu profile's batch of {batch} clips does not split over {args.threads} processes")
    common = ["--split", "train", "--profile", "cpu", "--no-progress",
              f"train.max_steps={args.warmup + args.steps}", "train.log_every=1", "train.val_every=0"]
    with tempfile.TemporaryDirectory(prefix="tagvis-cpu-processes-") as tmp:
        tmp = Path(tmp)
        ytvis = write_benchmark(tmp / "synth")["ytvis"]
        labels = {"single": f"1 process x {args.threads} threads, {batch} clips",
                  "ddp": f"{args.threads} processes x 1 thread, {batch // args.threads} clips each (gloo DDP)"}
        clips: dict[str, list[float]] = {name: [] for name in labels}
        print(f"{os.cpu_count()} CPUs; cpu profile, global batch {batch}; {args.rounds} alternating rounds")
        for r in range(args.rounds):
            out = tmp / f"single-{r}"
            run([sys.executable, "-m", "tagvis_lib", "train", "--ytvis", str(ytvis), "--out", str(out), *common],
                args.threads)
            clips["single"].append(batch / s_per_step(out, args.steps, args.warmup))
            out = tmp / f"ddp-{r}"
            run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.threads}",
                 "-m", "tagvis_lib", "train", "--ytvis", str(ytvis), "--out", str(out), *common,
                 f"train.batch_size={batch // args.threads}", "train.device=cpu"], 1)
            clips["ddp"].append(batch / s_per_step(out, args.steps, args.warmup))
            print(f"round {r + 1}: single {clips['single'][-1]:.2f} clips/s, ddp {clips['ddp'][-1]:.2f} clips/s",
                  flush=True)
        single = statistics.median(clips["single"])
        print()
        print("| training, cpu profile | clips/s (median) | rounds | ratio to single |")
        print("|---|---:|---|---:|")
        for name, label in labels.items():
            value = statistics.median(clips[name])
            rounds = " / ".join(f"{v:.2f}" for v in clips[name])
            print(f"| {label} | {value:.2f} | {rounds} | {value / single:.2f}x |")


if __name__ == "__main__":
    main()
