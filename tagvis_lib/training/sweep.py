"""Table III as a sweep: rows x seeds as independent jobs, in this process or through submitit.

One :class:`AblationJob` trains one row with one seed into ``<out>/<row slug>/seed<k>/`` on a DAVIS
training split and scores it on an evaluation split; its record goes to ``result.json`` there
(written atomically, last). A job whose ``result.json`` holds the same config is finished and is
reused on a rerun; an interrupted one resumes from its checkpoint. :func:`collect` gathers every
record under ``<out>`` into one file, ``<out>/results.json``, which notebook 05 and
:func:`tagvis_lib.notebook.reporting.paired_differences` read.

Launchers (:class:`LauncherConfig`): ``inline`` runs the jobs one after another in this process
(notebooks, CI); ``local`` runs them through submitit's local executor, as subprocesses of this
machine, ``max_parallel`` at a time; ``slurm`` submits them through submitit as one SLURM job
array (partition, GPUs, CPUs and time limit from the config) and returns at once unless ``wait``.
Paired design: every row of a seed trains from the same initialisation seed and sees the same
clips in the same order (the data order depends only on the seed, epoch and video index).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..ablations import TABLE3_ABLATIONS
from ..config import ExperimentConfig, apply_overrides
from ..utils.atomic import write_json

RESULT = "result.json"
RESULTS = "results.json"
LAUNCHERS = ("inline", "local", "slurm")


@dataclass(frozen=True)
class AblationJob:
    """One Table III row trained with one seed and scored on DAVIS.

    ``budget`` and ``overrides`` are dotted config overrides, a dict or ``"key=value"`` strings (the
    budget after the row's own); ``threads``: torch CPU threads of the job (0: torch's default).
    """

    row: str
    seed: int
    out: str
    profile: str
    davis_root: str
    train_split: str
    eval_split: str
    budget: Mapping[str, Any] | tuple[str, ...] = field(default_factory=dict)
    overrides: Mapping[str, Any] | tuple[str, ...] = field(default_factory=dict)
    device: str = "auto"
    threads: int = 0

    @property
    def run_dir(self) -> Path:
        from ..notebook.experiments import row_slug

        return Path(self.out) / row_slug(self.row) / f"seed{self.seed}"

    def config(self) -> ExperimentConfig:
        """The profile, the seed and device, ``overrides``, the row's switches, then ``budget``."""
        from ..notebook.experiments import experiment_config

        cfg = experiment_config(self.profile, device=self.device, seed=self.seed, overrides=_items(self.overrides))
        return apply_overrides(apply_overrides(cfg, TABLE3_ABLATIONS[self.row]), _items(self.budget))


def _items(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any] | list[str]:
    """Overrides as :func:`~tagvis_lib.config.apply_overrides` takes them (a dict, or a list of strings)."""
    if overrides is None:
        return {}
    return dict(overrides) if isinstance(overrides, Mapping) else list(overrides)


@dataclass
class LauncherConfig:
    """Where the jobs run: ``inline``, ``local`` (submitit subprocesses) or ``slurm`` (submitit array)."""

    launcher: str = "inline"
    partition: str | None = None  #: SLURM partition
    gpus_per_node: int = 0  #: GPUs of each SLURM job
    cpus_per_task: int = 2  #: CPUs of each job
    timeout_min: int = 240  #: time limit of each job, minutes
    max_parallel: int = 1  #: jobs running at once (local: waves of this size; slurm: array parallelism)
    wait: bool = True  #: slurm: wait for the jobs and collect; False: submit and return (rerun to collect)


def make_jobs(rows: Iterable[str] | None, seeds: Sequence[int], out: str | os.PathLike, profile: str,
              davis_root: str | os.PathLike, train_split: str, eval_split: str,
              budget: Mapping[str, Any] | Sequence[str] | None = None,
              overrides: Mapping[str, Any] | Sequence[str] | None = None,
              device: str = "auto", threads: int = 0) -> list[AblationJob]:
    """Every row (default: all of Table III, paper order) x every seed, seeds innermost."""
    names = list(TABLE3_ABLATIONS) if rows is None else list(rows)
    unknown = [r for r in names if r not in TABLE3_ABLATIONS]
    if unknown:
        raise KeyError(f"rows not in Table III: {unknown}; the rows are {list(TABLE3_ABLATIONS)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")

    def frozen(o):
        return dict(o) if isinstance(o, Mapping) else tuple(o or ())

    return [AblationJob(row, int(seed), str(out), profile, str(davis_root), train_split, eval_split,
                        frozen(budget), frozen(overrides), device, threads)
            for row in names for seed in seeds]


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config dict without the fields that do not change the numbers: what a resume may change
    (:data:`~tagvis_lib.training.trainer.RESUME_MAY_CHANGE`), logging, and the class count (set
    from the dataset at training)."""
    from .trainer import RESUME_MAY_CHANGE

    cfg = json.loads(json.dumps(config))
    for section, key in {*RESUME_MAY_CHANGE, ("train", "log_every"), ("train", "checkpoint_every"),
                         ("model", "num_classes")}:
        cfg.get(section, {}).pop(key, None)
    return cfg


def finished(job: AblationJob) -> dict[str, Any] | None:
    """The job's record when its ``result.json`` exists and holds this job's config, else None."""
    path = job.run_dir / RESULT
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    same = _comparable(record.get("config", {})) == _comparable(job.config().to_dict())
    return record if same and record.get("eval_split") == job.eval_split else None


def run_job(job: AblationJob) -> dict[str, Any]:
    """Train (or resume, or reuse) one job and score it; returns and writes its record.

    Record: row, seed, metrics (DAVIS J&F-Mean, J-Mean, F-Mean, ... on the 0-1 scale), steps,
    train_seconds, parameters, eval_split, train_split, config, overrides (the row's), threads
    (torch CPU threads the job ran with), reused.
    """
    done = finished(job)
    if done is not None:
        return {**done, "reused": True}
    import torch

    if job.threads:
        torch.set_num_threads(job.threads)
    from ..notebook.experiments import FINAL, evaluate_davis_run, train_or_resume
    from ..model import load_model

    cfg = job.config()
    summary = train_or_resume(cfg, job.run_dir, davis_root=job.davis_root, split=job.train_split, progress=False)
    scored = evaluate_davis_run(job.run_dir / FINAL, job.davis_root, job.eval_split, job.run_dir,
                                device=cfg.train.device, progress=False)
    model, saved_cfg, _ = load_model(job.run_dir / FINAL)
    record = {"row": job.row, "seed": job.seed, "metrics": scored["metrics"], "steps": summary["steps"],
              "train_seconds": summary["seconds"], "parameters": sum(p.numel() for p in model.parameters()),
              "eval_split": job.eval_split, "train_split": job.train_split, "config": saved_cfg.to_dict(),
              "overrides": TABLE3_ABLATIONS[job.row], "threads": torch.get_num_threads()}
    write_json(job.run_dir / RESULT, record, indent=1)
    return {**record, "reused": False}


def make_executor(launcher: LauncherConfig, log_dir: str | os.PathLike) -> Any:
    """A submitit executor for ``launcher.launcher`` (``local`` or ``slurm``) logging into ``log_dir``.

    submitit's own ``LocalExecutor`` and ``SlurmExecutor`` (its ``AutoExecutor`` needs setuptools'
    ``pkg_resources`` for plugins). Local jobs get ``cpus_per_task`` threads through
    ``OMP_NUM_THREADS``; SLURM jobs the partition, GPUs, CPUs and time limit as ``#SBATCH`` lines.
    """
    from submitit import LocalExecutor, SlurmExecutor

    if launcher.launcher == "local":
        executor = LocalExecutor(folder=str(log_dir))
        executor.update_parameters(timeout_min=launcher.timeout_min,
                                   setup=[f"export OMP_NUM_THREADS={launcher.cpus_per_task}"])
        return executor
    if launcher.launcher != "slurm":
        raise ValueError(f"launcher {launcher.launcher!r}: submitit runs 'local' or 'slurm' jobs")
    executor = SlurmExecutor(folder=str(log_dir))
    params: dict[str, Any] = {"time": launcher.timeout_min, "cpus_per_task": launcher.cpus_per_task,
                              "job_name": "tagvis-ablate", "array_parallelism": launcher.max_parallel}
    if launcher.gpus_per_node:
        params["gpus_per_node"] = launcher.gpus_per_node
    if launcher.partition:
        params["partition"] = launcher.partition
    executor.update_parameters(**params)
    return executor


def run_jobs(jobs: Sequence[AblationJob], launcher: LauncherConfig | None = None,
             log_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run every unfinished job on ``launcher`` (default inline) and collect.

    Returns ``{"records": [...] (finished jobs, in job order), "submitted": [job ids] (slurm
    without wait), "reused": count, "results": path of results.json}``. ``log_dir`` (default
    ``<out>/submitit``) holds submitit's pickles and logs.
    """
    launcher = launcher or LauncherConfig()
    if launcher.launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher.launcher!r}")
    if not jobs:
        raise ValueError("no job to run")
    outs = {job.out for job in jobs}
    if len(outs) != 1:
        raise ValueError(f"jobs of one sweep share one output folder, got {sorted(outs)}")
    out = Path(outs.pop())
    pending = [job for job in jobs if finished(job) is None]
    reused = len(jobs) - len(pending)
    submitted: list[str] = []
    if launcher.launcher == "inline":
        for job in pending:
            run_job(job)
    elif pending:
        executor = make_executor(launcher, log_dir or out / "submitit")
        if launcher.launcher == "local":
            for start in range(0, len(pending), max(1, launcher.max_parallel)):
                wave = [executor.submit(run_job, job) for job in pending[start:start + max(1, launcher.max_parallel)]]
                for handle in wave:
                    handle.result()  # re-raises a job's failure with its log
        else:
            with executor.batch():
                handles = [executor.submit(run_job, job) for job in pending]
            submitted = [h.job_id for h in handles]
            if launcher.wait:
                for handle in handles:
                    handle.result()
                submitted = []
    records = [r for r in (finished(job) for job in jobs) if r is not None]
    path = collect(out)
    return {"records": records, "submitted": submitted, "reused": reused, "results": str(path)}


def collect(out: str | os.PathLike) -> Path:
    """Gather every ``<out>/*/seed*/result.json`` into ``<out>/results.json`` (a list; the configs left out)."""
    out = Path(out)
    records = []
    for path in sorted(out.glob(f"*/seed*/{RESULT}")):
        record = json.loads(path.read_text(encoding="utf-8"))
        records.append({k: v for k, v in record.items() if k != "config"})
    order = {row: i for i, row in enumerate(TABLE3_ABLATIONS)}
    records.sort(key=lambda r: (order.get(r["row"], len(order)), r["seed"]))
    write_json(out / RESULTS, records, indent=1)
    return out / RESULTS


def read_results(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``<out>/results.json`` (see :func:`collect`)."""
    return json.loads((Path(out) / RESULTS).read_text(encoding="utf-8"))

