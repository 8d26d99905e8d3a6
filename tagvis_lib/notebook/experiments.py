"""High-level steps the notebooks call: data, training, evaluation and the Table III sweep.

Every notebook runs on its own (d2l style): each step reuses what an earlier notebook left in the
run directory and makes it when it is missing. Layout of a run directory (``runs/<profile>``)::

    data/              the embedded benchmark (ytvis/, DAVIS/, benchmark.json) when no dataset is given
    train/             the main run: config.json, metrics.jsonl, checkpoint_last.pt, model_final.pt
    eval/              results of Tables I and II and their metrics.json
    ablations/<row>/seed<k>/   one training run per Table III row and seed (:mod:`tagvis_lib.training.sweep`);
                       ablations/results.json gathers their records

Steps that take a while take ``progress``: True or False, or None (the default) for progress bars only
where they can be seen (a terminal, or a notebook with a widget frontend; not a headless papermill run,
which would store one frozen bar per epoch).

The open points of the paper are listed in :mod:`tagvis_lib.choices`, the views of the model and the
loss (module table, toy tag maps) in :mod:`tagvis_lib.notebook.inspection`, the figures of the notebooks in
:mod:`tagvis_lib.notebook.figures`.
"""
from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ..choices import open_points  # noqa: F401  (re-exported for the notebooks)
from ..config import ExperimentConfig, apply_overrides, profile_config
from ..errors import TagvisError
from .inspection import module_table  # noqa: F401  (re-exported for the notebooks)
from ..utils.atomic import write_json

#: Size of the embedded benchmark per profile (arguments of ``write_benchmark``).
BENCHMARK_SIZES: dict[str, dict[str, int]] = {
    "smoke": {"n_train": 4, "n_valid": 2, "n_test": 2, "height": 48, "width": 80},
    "cpu": {"n_train": 40, "n_valid": 10, "n_test": 30, "height": 96, "width": 160},
    "paper": {"n_train": 40, "n_valid": 10, "n_test": 30, "height": 96, "width": 160},
}
#: Training budget of every Table III row per profile (config overrides, the same for each row).
#: cpu: 300 steps of 2 clips of 8 frames (15 passes over the 40 training videos; the cosine schedule
#: decays over them) per row: 12 rows x 3 seeds x about a minute of training and evaluation on 2
#: cores. It reaches about two thirds of the full schedule's J&F, short of the 0.9 asked for: a budget
#: that reaches 0.9 does not fit the 2 hours of ``make reproduce`` (notebook 05 says why); smoke: 2
#: steps; paper: the profile's own schedule (GPU).
ABLATION_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"train.max_steps": 2},
    "cpu": {"train.max_steps": 300},
    "paper": {},
}
#: Training seeds of every Table III row per profile: the same seeds for every row (a paired design).
ABLATION_SEEDS: dict[str, tuple[int, ...]] = {"smoke": (0,), "cpu": (0, 1, 2), "paper": (0, 1, 2)}
#: Budgets (training steps; None = the profile's full schedule) of the learning curve of the full
#: model that justifies the Table III budget: it should reach 0.9 of its full-training J&F on valid.
BUDGET_CURVE_STEPS: dict[str, tuple[int | None, ...]] = {"smoke": (1, 2, None), "cpu": (100, 300, 600, 1200, None),
                                                          "paper": ()}
#: Training seeds of the models behind Tables I and II per profile (seed 0 is the main run of chapter 3).
TABLE_SEEDS: dict[str, tuple[int, ...]] = {"smoke": (0,), "cpu": (0, 1, 2), "paper": (0,)}
TRAIN_DIR, EVAL_DIR, ABLATION_DIR, DATA_DIR = "train", "eval", "ablations", "data"
FINAL = "model_final.pt"


@dataclass(frozen=True)
class DataPaths:
    """The YouTube-VIS and DAVIS roots the notebooks read, with the splits to train, choose and report on.

    ``*_valid``/``davis_val``: where choices are made (and chapter 4 diagnoses); ``*_test``: what
    Tables I-III report, a split no choice has seen. ``embedded`` is True when the roots are the
    synthetic benchmark written into the run directory.
    """

    ytvis_root: Path
    davis_root: Path
    ytvis_train: str = "train"
    ytvis_valid: str = "valid"
    davis_train: str = "train"
    davis_val: str = "val"
    embedded: bool = True
    ytvis_test: str = "test"
    davis_test: str = "test-dev"


# ----------------------------------------------------------------------------------------- data
def synth_command(run_dir: str | os.PathLike, profile: str, seed: int = 0) -> str:
    """The ``tagvis synth`` command line that writes the benchmark of ``profile`` into ``run_dir/data``."""
    size = BENCHMARK_SIZES[profile]
    return shlex.join(["tagvis", "synth", str(Path(run_dir) / DATA_DIR), "--train-videos", str(size["n_train"]),
                       "--valid-videos", str(size["n_valid"]), "--test-videos", str(size["n_test"]), "--seed", str(seed),
                       "--height", str(size["height"]), "--width", str(size["width"])])


def prepare_benchmark(run_dir: str | os.PathLike, profile: str, seed: int = 0) -> DataPaths:
    """Write the embedded benchmark of ``profile`` into ``run_dir/data`` unless it is there already.

    Idempotent: ``data/benchmark.json`` (written last) records the arguments; a benchmark with the
    same arguments is reused, one with other arguments is refused (delete the folder to rewrite it).
    """
    from ..data.synth import write_benchmark

    if profile not in BENCHMARK_SIZES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {tuple(BENCHMARK_SIZES)}")
    out = Path(run_dir) / DATA_DIR
    stamp = out / "benchmark.json"
    args = {**BENCHMARK_SIZES[profile], "seed": seed}
    if stamp.exists():
        found = json.loads(stamp.read_text(encoding="utf-8"))
        if found != args:
            raise TagvisError(f"{stamp}: holds a benchmark written with {found}, this run needs {args}; "
                              f"delete {out} or choose another run directory")
    else:
        write_benchmark(out, **args)
        write_json(stamp, args)
    return DataPaths(out / "ytvis", out / "DAVIS")


def resolve_data(run_dir: str | os.PathLike, profile: str, ytvis_root: str | os.PathLike | None = None,
                 davis_root: str | os.PathLike | None = None, seed: int = 0) -> DataPaths:
    """The data of a notebook: the user's roots where given, the embedded benchmark for the others.

    A user's YouTube-VIS root is trained on ``train_sub`` and evaluated on ``valid_sub`` (the
    published ``valid`` split has no annotations): run ``tagvis split ROOT --holdout 0.1`` once.
    A user's DAVIS root uses ``train`` and ``val``. On a user's roots the reported split is that
    held-out one (the profiles were chosen on the embedded benchmark, never on it).
    """
    embedded = prepare_benchmark(run_dir, profile, seed) if ytvis_root is None or davis_root is None else None
    if ytvis_root is None:
        ytvis, ytvis_splits = embedded.ytvis_root, ("train", "valid")
    else:
        ytvis, ytvis_splits = Path(ytvis_root), ("train_sub", "valid_sub")
        missing = [s for s in ytvis_splits if not (ytvis / f"{s}.json").exists()]
        if missing:
            raise TagvisError(f"{ytvis}: no {missing[0]}.json; run `tagvis split {ytvis} --holdout 0.1` once to hold "
                              "out a local validation split (the published valid split has no annotations)")
    davis = embedded.davis_root if davis_root is None else Path(davis_root)
    embedded_both = ytvis_root is None and davis_root is None
    return DataPaths(ytvis, davis, *ytvis_splits, "train", "val", embedded=embedded_both,
                     ytvis_test="test" if ytvis_root is None else ytvis_splits[1],
                     davis_test="test-dev" if davis_root is None else "val")


def training_clip(dataset: Any, cfg: ExperimentConfig, index: int = 0, epoch: int = 0) -> dict[str, np.ndarray]:
    """One training clip of video ``index`` as the trainer draws it, back in displayable form.

    Returns ``frames`` uint8 (T, H, W, 3) (augmented, Kinetics normalisation undone), ``instance_ids``
    int64 (T, H, W) (0 background, 1..N, 255 ignored), ``valid`` bool (T,), ``frame_indices`` int64 (T,).
    """
    from ..data.normalization import denormalize
    from ..data.torch_dataset import ClipDataset

    clips = ClipDataset(dataset, cfg.data, train=True, seed=cfg.train.seed)
    clips.set_epoch(epoch)
    item = clips[index]
    frames = denormalize(item["frames"], channel_dim=0)
    return {"frames": frames.permute(1, 2, 3, 0).numpy(), "instance_ids": item["instance_ids"].numpy(),
            "valid": item["valid"].numpy(), "frame_indices": item["frame_indices"].numpy()}


def training_clip_draws(num_frames: int, cfg: ExperimentConfig, index: int, epochs: int) -> list[Any]:
    """The frames :class:`~tagvis_lib.data.torch_dataset.ClipDataset` takes from video ``index``
    (``num_frames`` long) in epochs ``0..epochs-1``: one :class:`~tagvis_lib.data.clips.ClipIndices`
    per epoch, drawn from the same generator ``default_rng([train.seed, epoch, index])`` (the temporal
    flip, drawn after, may reverse their order in the clip)."""
    from ..data.clips import sample_train_indices

    d = cfg.data
    return [sample_train_indices(num_frames, d.clip_length, np.random.default_rng([cfg.train.seed, epoch, index]),
                                 d.min_drop, d.max_drop, d.short_video) for epoch in range(epochs)]


def inference_clip(num_frames: int, cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    """(indices int64 (T,), valid bool (T,)) of the single inference clip of a video (section IV)."""
    from ..data.clips import inference_indices

    from ..inference.planning import inference_clip_length

    return inference_indices(num_frames, inference_clip_length(cfg))


# ------------------------------------------------------------------------------------ set-up
@dataclass(frozen=True)
class NotebookSetup:
    """What every notebook derives from its parameters: folders, device, config."""

    profile: str
    run_dir: Path  #: everything the notebook makes or reuses (default ``../runs/<profile>``)
    figures_dir: Path  #: tables and figures (created)
    device: str  #: the resolved device name (``auto``: CUDA, then Apple MPS, then the CPU)
    cfg: ExperimentConfig  #: the profile with the device, the seed and the overrides applied


def setup(profile: str, run_dir: str | os.PathLike | None = None, figures_dir: str | os.PathLike = "../figures",
          device: str = "auto", seed: int = 0, overrides: Mapping[str, Any] | Iterable[str] | None = None,
          quiet: bool = False) -> NotebookSetup:
    """The notebooks' first step: resolve the device (:func:`tagvis_lib.training.resolve_device`),
    build the config, create the figures folder, and print one line saying what runs where."""
    from ..training import resolve_device

    dev = str(resolve_device(device))
    out = NotebookSetup(profile, Path(run_dir or f"../runs/{profile}"), Path(figures_dir), dev,
                        experiment_config(profile, device=dev, seed=seed, overrides=overrides))
    out.figures_dir.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"profile {profile!r} on {device_label(dev)}; run directory {out.run_dir}")
    return out


# ------------------------------------------------------------------------------------ training
def experiment_config(profile: str, device: str = "auto", seed: int = 0,
                      overrides: Mapping[str, Any] | Iterable[str] | None = None) -> ExperimentConfig:
    """``profile_config(profile)`` with the device, the seed and dotted ``overrides`` applied."""
    cfg = apply_overrides(profile_config(profile), {"train.device": device, "train.seed": seed})
    return apply_overrides(cfg, overrides or {})


def train_or_resume(cfg: ExperimentConfig, run_dir: str | os.PathLike, ytvis_root: str | os.PathLike | None = None,
                    davis_root: str | os.PathLike | None = None, split: str = "train",
                    progress: bool | None = None) -> dict[str, Any]:
    """Train into ``run_dir``, resuming an interrupted run and reusing a finished one.

    A run whose ``model_final.pt`` exists and whose steps reach ``cfg``'s budget returns at once; a
    run stopped earlier continues from ``checkpoint_last.pt`` (a larger budget extends it). Returns
    the trainer's summary plus ``reused`` (True when no step was taken).
    """
    from ..training import train

    run_dir = Path(run_dir)
    before = _steps_done(run_dir)
    summary = train(cfg, ytvis_root=ytvis_root, davis_root=davis_root, split=split, out_dir=run_dir,
                    resume=True, progress=_progress(progress))
    summary["reused"] = before is not None and summary["steps"] == before
    return summary


def _steps_done(run_dir: Path) -> int | None:
    if not (run_dir / FINAL).exists() or not (run_dir / "checkpoint_last.pt").exists():
        return None
    from ..model import load_checkpoint

    return int(load_checkpoint(run_dir / "checkpoint_last.pt")["step"])


def ensure_checkpoint(cfg: ExperimentConfig, data: DataPaths, run_dir: str | os.PathLike,
                      progress: bool | None = None) -> Path:
    """``run_dir/train/model_final.pt``, trained on ``data``'s YouTube-VIS training split if missing."""
    path = Path(run_dir) / TRAIN_DIR / FINAL
    if not path.exists():
        train_or_resume(cfg, path.parent, ytvis_root=data.ytvis_root, split=data.ytvis_train, progress=progress)
    return path


def seed_checkpoints(cfg: ExperimentConfig, data: DataPaths, run_dir: str | os.PathLike, seeds: Sequence[int],
                     progress: bool | None = None) -> list[Path]:
    """``model_final.pt`` of one run per training seed, trained when missing (Tables I and II).

    Seed ``cfg.train.seed`` is the main run, ``run_dir/train/`` (:func:`ensure_checkpoint`); any
    other seed k trains the same config with ``train.seed=k`` into ``run_dir/train_seed<k>/``.
    """
    out = []
    for seed in seeds:
        if seed == cfg.train.seed:
            out.append(ensure_checkpoint(cfg, data, run_dir, progress))
            continue
        path = Path(run_dir) / f"{TRAIN_DIR}_seed{seed}" / FINAL
        if not path.exists():
            train_or_resume(apply_overrides(cfg, {"train.seed": int(seed)}), path.parent, ytvis_root=data.ytvis_root,
                            split=data.ytvis_train, progress=progress)
        out.append(path)
    return out


# ---------------------------------------------------------------------------------- evaluation
def device_label(device: str | torch.device) -> str:
    """What the numbers were measured on: the GPU's name, or ``cpu (N threads)``, or the device type."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads > 1 else ''})"
    return device.type


def _load_for_eval(checkpoint: str | os.PathLike, cfg: ExperimentConfig | None, device: str,
                   num_classes: int | None) -> tuple[Any, ExperimentConfig, list[dict[str, Any]], torch.device]:
    """Model, the checkpoint's config with ``cfg``'s inference section (when given), categories, device."""
    from ..model import load_model
    from ..training import resolve_device

    dev = resolve_device(device)
    model, ck_cfg, categories = load_model(checkpoint, dev, num_classes=num_classes)
    if cfg is not None:
        ck_cfg = ExperimentConfig.from_dict({**ck_cfg.to_dict(), "inference": asdict(cfg.inference)})
    return model, ck_cfg, categories, dev


def _progress(progress: bool | None) -> bool:
    """``progress``, or when None whether bars can be seen (:func:`tagvis_lib.notebook.widgets.live_output`)."""
    from .widgets import live_output

    return live_output() if progress is None else progress


def _predict_all(model: Any, dataset: Any, cfg: ExperimentConfig, dev: torch.device, progress: bool | None,
                 **export: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """:func:`tagvis_lib.inference.predict_split` with the device named in the run summary."""
    from ..inference import predict_split

    entries, run = predict_split(model, dataset, cfg, dev, progress=_progress(progress), **export)
    return entries, {**run, "device": device_label(dev)}


def evaluate_ytvis_run(checkpoint: str | os.PathLike, ytvis_root: str | os.PathLike, split: str,
                       out_dir: str | os.PathLike, cfg: ExperimentConfig | None = None, device: str = "auto",
                       progress: bool | None = None) -> dict[str, Any]:
    """Predict ``split`` of a YouTube-VIS root, write the results file, score it (Table I).

    ``cfg``: its inference section replaces the checkpoint's (None: the checkpoint's own). Writes
    ``out_dir/ytvis_<split>_results.json`` and the server zip. Returns ``metrics`` (AP, AP50, AP75,
    APs, APm, APl, AR1, AR10 on the 0-1 scale), videos, frames, network_frames, network_fps, video_fps, device,
    checkpoint, split and results.
    """
    from ..model.checkpoint import check_categories
    from ..data import YTVISDataset
    from ..inference import write_ytvis_results
    from ..metrics import evaluate_ytvis

    dataset = YTVISDataset(ytvis_root, split)
    model, cfg, categories, dev = _load_for_eval(checkpoint, cfg, device, len(dataset.categories))
    check_categories(str(checkpoint), categories, dataset.categories, str(ytvis_root))
    entries, run = _predict_all(model, dataset, cfg, dev, progress, categories=categories)
    results, _ = write_ytvis_results(entries, Path(out_dir) / f"ytvis_{split}_results.json")
    metrics = {k: float(v) for k, v in evaluate_ytvis(dataset.json_path, entries).items()}
    return {"metrics": metrics, **run, "checkpoint": str(checkpoint), "split": split, "results": str(results)}


def evaluate_davis_run(checkpoint: str | os.PathLike, davis_root: str | os.PathLike, split: str,
                       out_dir: str | os.PathLike, cfg: ExperimentConfig | None = None, device: str = "auto",
                       progress: bool | None = None) -> dict[str, Any]:
    """Predict ``split`` of a DAVIS root as unsupervised proposals and score them (Tables II and III).

    Class-agnostic: any checkpoint works (its instances become proposals ranked by score). Writes
    ``out_dir/davis_<split>/<sequence>/<frame>.png``. Returns ``metrics`` (J&F-Mean, J-Mean,
    J-Recall, J-Decay, F-Mean, F-Recall, F-Decay, 0-1), ``per_sequence`` ({sequence: {"J": [...],
    "F": [...]}}, per object), videos, frames, network_frames, network_fps, video_fps, device, checkpoint, split and results.
    """
    from ..data import DAVISDataset
    from ..metrics import evaluate_davis

    dataset = DAVISDataset(davis_root, split)
    model, cfg, _, dev = _load_for_eval(checkpoint, cfg, device, None)
    results = Path(out_dir) / f"davis_{split}"
    _, run = _predict_all(model, dataset, cfg, dev, progress, davis_dir=results)
    scores = evaluate_davis(davis_root, results, split=split)
    metrics = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}
    per_sequence = scores.get("per_sequence", {})
    return {"metrics": metrics, "per_sequence": per_sequence, **run, "checkpoint": str(checkpoint), "split": split,
            "results": str(results)}


def _clip_outputs(checkpoint: str | os.PathLike, ytvis_root: str | os.PathLike, split: str, clips: int,
                  train_clips: bool, device: str, seed: int) -> tuple[ExperimentConfig, Iterator[tuple[dict[str, Any], Any]]]:
    """The checkpoint's config and an iterator of (clip item, network output) over up to ``clips`` clips
    of ``split``, one per video spread over the split, drawn as in training (``train_clips``: crops,
    flips, dropped frames) or as at evaluation (resize only), at the checkpoint's size and precision."""
    from ..data import YTVISDataset
    from ..data.torch_dataset import ClipDataset
    from ..model.precision import autocast, resolve_precision, torch_memory_format

    model, cfg, _, dev = _load_for_eval(checkpoint, None, device, None)
    dataset = ClipDataset(YTVISDataset(ytvis_root, split), cfg.data, train=train_clips, seed=seed)
    precision = resolve_precision(cfg.inference.precision, dev, "inference.precision")
    fmt = torch_memory_format(cfg.model.memory_format)

    def outputs() -> Iterator[tuple[dict[str, Any], Any]]:
        for i in range(0, len(dataset), max(1, len(dataset) // clips))[:clips]:
            item = dataset[i]
            frames = item["frames"][None].to(dev).contiguous(memory_format=fmt)
            with torch.no_grad(), autocast(dev, precision):
                out = model(frames)
            yield item, out

    return cfg, outputs()


def semantic_pixel_stats(checkpoint: str | os.PathLike, ytvis_root: str | os.PathLike, split: str,
                         clips: int = 16, train_clips: bool = False, device: str = "auto",
                         seed: int = 5) -> dict[str, float]:
    """What the semantic branch gets right, per pixel, on up to ``clips`` clips of ``split``.

    Clips are drawn as in training (``train_clips``: crops, flips, dropped frames) or as at
    evaluation (resize only), one per video spread over the split, at the checkpoint's size. Returns
    ``foreground_iou`` (argmax not background vs annotated foreground), ``class_accuracy`` (argmax
    class where both are foreground), ``predicted_foreground`` / ``annotated_foreground`` (pixel
    counts) and ``clips``. Ignored pixels (padding, void, crowd) are left out.
    """
    from ..constants import IGNORE_INDEX

    _, outputs = _clip_outputs(checkpoint, ytvis_root, split, clips, train_clips, device, seed)
    inter = union = correct = both = predicted = annotated = used = 0
    for item, out in outputs:
        pred = out.logits.float()[0].argmax(0).cpu()
        sem = item["semantic"]
        known = sem != IGNORE_INDEX
        p_fg, g_fg = (pred > 0) & known, (sem > 0) & known
        inter += int((p_fg & g_fg).sum())
        union += int((p_fg | g_fg).sum())
        hit = p_fg & g_fg
        correct += int((pred[hit] == sem[hit]).sum())
        both += int(hit.sum())
        predicted += int(p_fg.sum())
        annotated += int(g_fg.sum())
        used += 1
    return {"foreground_iou": inter / union if union else 1.0, "class_accuracy": correct / both if both else 0.0,
            "predicted_foreground": predicted, "annotated_foreground": annotated, "clips": used}


def tag_separation_stats(checkpoint: str | os.PathLike, ytvis_root: str | os.PathLike, split: str,
                         clips: int = 64, train_clips: bool = False, device: str = "auto",
                         seed: int = 5) -> dict[str, float]:
    """How well the tags tell annotated instances apart, per frame, on up to ``clips`` clips of ``split``.

    Clips are drawn as :func:`semantic_pixel_stats` draws them. In every frame each annotated
    instance (at least 16 pixels) has a mean tag; returns medians over instance-frames or pairs:
    ``spread`` (root mean squared distance of an instance's tags to its mean), ``frame_step`` (distance
    between an instance's means in successive frames of a clip: neighbouring video frames when drawn
    as in training, frames spread over the whole video when drawn as at evaluation), ``pair_distance`` (between the means
    of two instances of one frame) and ``touching_distance`` (only pairs whose masks touch, within 2
    pixels); ``touching_within_bandwidth`` (share of touching pairs closer than the checkpoint's
    grouping bandwidth, which one mode may then cover); ``pixel_accuracy`` (share of the pixels of
    frames with two or more instances whose tag is nearest their own instance's mean); and the counts
    ``instance_frames``, ``touching_pairs``, ``clips``.
    """
    from scipy.ndimage import binary_dilation

    from ..constants import IGNORE_INDEX
    from ..inference.grouping import grouping_bandwidth

    cfg, outputs = _clip_outputs(checkpoint, ytvis_root, split, clips, train_clips, device, seed)
    bandwidth = grouping_bandwidth(cfg)
    spread, steps, pairs, touching = [], [], [], []
    hits = total = used = 0
    for item, out in outputs:
        tags = out.tags.float()[0].cpu()  # (D, T, H, W)
        ids = item["instance_ids"]
        previous: dict[int, torch.Tensor] = {}
        for t in range(ids.shape[0]):
            present = [int(k) for k in torch.unique(ids[t]) if 0 < int(k) < IGNORE_INDEX and int((ids[t] == k).sum()) >= 16]
            masks = {k: ids[t] == k for k in present}
            means = {k: tags[:, t][:, masks[k]].mean(1) for k in present}
            for k in present:
                x = tags[:, t][:, masks[k]]
                spread.append(float(((x - means[k][:, None]) ** 2).sum(0).mean().sqrt()))
                if k in previous:
                    steps.append(float((means[k] - previous[k]).norm()))
                if len(present) > 1:
                    centres = torch.stack([means[j] for j in present])
                    hits += int((torch.cdist(x.T, centres).argmin(1) == present.index(k)).sum())
                    total += x.shape[1]
            grown = {k: binary_dilation(masks[k].numpy(), iterations=2) for k in present}
            for a, ka in enumerate(present):
                for kb in present[a + 1:]:
                    d = float((means[ka] - means[kb]).norm())
                    pairs.append(d)
                    if (grown[ka] & masks[kb].numpy()).any():
                        touching.append(d)
            previous = means
        used += 1

    def median(values: list[float]) -> float:
        return float(np.median(values)) if values else float("nan")

    return {"spread": median(spread), "frame_step": median(steps), "pair_distance": median(pairs),
            "touching_distance": median(touching),
            "touching_within_bandwidth": float(np.mean(np.array(touching) < bandwidth)) if touching else float("nan"),
            "pixel_accuracy": hits / total if total else float("nan"), "instance_frames": len(spread),
            "touching_pairs": len(touching), "clips": used}


# ------------------------------------------------------------------------------------ Table III
def budget_curve(profile: str, data: DataPaths, run_dir: str | os.PathLike, budgets: Sequence[int | None],
                 seed: int = 0, overrides: Mapping[str, Any] | None = None, device: str = "auto") -> list[dict[str, Any]]:
    """J&F on DAVIS ``data.davis_val`` of the full model ("Ours") trained with each budget.

    Each budget is a :mod:`tagvis_lib.training.sweep` job of ``profile`` with ``overrides``
    (``train.max_steps``; None: the profile's own schedule) in ``run_dir/budget_<steps|full>/``,
    reused when finished. Returns one dict per budget, in order: ``steps`` (taken), ``budget``
    (None for full), ``J&F-Mean``, and ``fraction`` of the full schedule's J&F when a None budget is
    among them (else None). Choose the Table III budget here, on valid; Table III itself reports the
    test split.
    """
    from ..training.sweep import make_jobs, run_jobs

    points = []
    for budget in budgets:
        out = Path(run_dir) / f"budget_{'full' if budget is None else budget}"
        jobs = make_jobs(["Ours"], [seed], out, profile, data.davis_root, data.davis_train, data.davis_val,
                         budget={} if budget is None else {"train.max_steps": int(budget)}, overrides=overrides,
                         device=device)
        record = run_jobs(jobs)["records"][0]
        points.append({"budget": budget, "steps": record["steps"], "J&F-Mean": record["metrics"]["J&F-Mean"]})
    full = next((p["J&F-Mean"] for p in points if p["budget"] is None), None)
    for p in points:
        p["fraction"] = None if not full else p["J&F-Mean"] / full
    return points


def row_slug(row: str) -> str:
    """Folder name of a Table III row: ``"Tag-Based Attention + Connector"`` -> ``tag_based_attention_connector``."""
    return re.sub(r"[^a-z0-9]+", "_", row.lower()).strip("_")
