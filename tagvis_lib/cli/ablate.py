"""``tagvis ablate``: Table III rows x seeds as independent jobs (inline, submitit local, or SLURM)."""
from __future__ import annotations

import argparse
import json

from ..config import PROFILES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate", help="train and score Table III rows x seeds as jobs (submitit: local or SLURM)",
        description="Each (row, seed) trains on a DAVIS training split into OUT/<row>/seed<k>/ and is scored on "
        "an evaluation split; finished jobs are reused on a rerun, interrupted ones resume. Every row of a seed "
        "starts from the same initialisation and sees the same clips (paired). Prints one JSON line per finished "
        "job, then the path of OUT/results.json, which gathers them.")
    p.add_argument("--davis", required=True, metavar="ROOT", help="DAVIS root (ImageSets/2017/<split>.txt)")
    p.add_argument("--out", required=True, help="sweep folder: OUT/<row>/seed<k>/, OUT/results.json")
    p.add_argument("--rows", nargs="+", help="Table III rows (default: all, as in tagvis_lib.TABLE3_ABLATIONS)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default 0 1 2)")
    p.add_argument("--profile", choices=PROFILES, default="cpu")
    p.add_argument("--train-split", default="train", help="DAVIS split to train on (default train)")
    p.add_argument("--eval-split", default="val", help="DAVIS split to score (default val; report on a test split)")
    p.add_argument("--launcher", choices=("inline", "local", "slurm"), default="local",
                   help="inline: this process; local: submitit subprocesses; slurm: a submitit job array")
    p.add_argument("--max-parallel", type=int, default=1, help="jobs at once (local waves, SLURM array limit)")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per SLURM job")
    p.add_argument("--cpus", type=int, default=2, help="CPUs per job")
    p.add_argument("--time-min", type=int, default=240, help="time limit per job in minutes")
    p.add_argument("--no-wait", action="store_true", help="slurm: submit and return; rerun to collect")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads per job (0: torch's default)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="budget and config overrides for every row, e.g. train.max_steps=300")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import TagvisError
    from ..training.sweep import LauncherConfig, make_jobs, run_jobs
    from ..training.trainer import check_config

    try:
        jobs = make_jobs(args.rows, args.seeds, args.out, args.profile, args.davis, args.train_split,
                         args.eval_split, budget=args.overrides, device=args.device, threads=args.threads)
        for job in jobs:  # every job's config is valid before anything is launched
            check_config(job.config())
    except (KeyError, ValueError) as exc:
        raise TagvisError(exc.args[0] if exc.args else str(exc)) from None
    from pathlib import Path

    from ..data import DAVISDataset
    from ..training.sweep import RESULTS
    from .outputs import _writable_parent

    for split in {args.train_split, args.eval_split}:
        DAVISDataset(args.davis, split).check_files()
    _writable_parent(Path(args.out) / RESULTS)  # the output location before any job starts
    launcher = LauncherConfig(args.launcher, args.partition, args.gpus, args.cpus, args.time_min,
                              args.max_parallel, wait=not args.no_wait)
    try:
        done = run_jobs(jobs, launcher)
    except RuntimeError as exc:  # submitit: no srun/sbatch here, a job's failure (with its log)
        raise TagvisError(f"{args.launcher} launcher: {str(exc).strip().splitlines()[0]}") from None
    for r in done["records"]:
        print(json.dumps({"row": r["row"], "seed": r["seed"], "J&F-Mean": r["metrics"]["J&F-Mean"],
                          "steps": r["steps"], "train_seconds": r["train_seconds"]}))
    print(json.dumps({"results": done["results"], "jobs": len(jobs), "finished": len(done["records"]),
                      "reused": done["reused"], "submitted": done["submitted"]}))
    return 0
