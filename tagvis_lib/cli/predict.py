"""``tagvis predict``: a checkpoint's instances for a YouTube-VIS split, a DAVIS split or one video.

Outputs: ``--ytvis``: the results JSON (``--out`` ending in .json, else ``OUT/results.json``) and the
zip the evaluation server takes; ``--davis``: ``OUT/<sequence>/<frame>.png`` palette PNGs;
``--video``: ``OUT/masks/*.png``, ``OUT/overlay.mp4``, ``OUT/overlay.gif``, ``OUT/tags.png`` (tag
histogram over time) and ``OUT/instances.json``. Prints one JSON line: videos, frames, fps
(model-only and end-to-end, after the warm-up runs) and the output paths.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, apply_overrides
from ..errors import TagvisError
from .outputs import check_files, staged_folder


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict", help="predict instances with a checkpoint",
        description="Predict the instances of a YouTube-VIS split, a DAVIS split or one video with a checkpoint. "
        "--ytvis writes the results JSON and its zip for the server, --davis palette PNGs per sequence, "
        "--video per-frame PNGs, an overlay mp4 and GIF. Prints one JSON line with fps and output paths.")
    p.add_argument("--checkpoint", required=True, help="a tagvis checkpoint (.pt)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--ytvis", metavar="ROOT", help="YouTube-VIS root (ROOT/<split>.json)")
    source.add_argument("--davis", metavar="ROOT", help="DAVIS root (ROOT/ImageSets/2017/<split>.txt); class-agnostic, any checkpoint")
    source.add_argument("--video", metavar="FILE", help="a video file or a folder of frames")
    p.add_argument("--split", help="split of --ytvis or --davis (e.g. valid_sub, val)")
    p.add_argument("--out", required=True, help="results .json (--ytvis) or output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results file or a non-empty output folder")
    p.add_argument("--device", default="auto", help="auto (cuda -> mps -> cpu) or a torch device")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="inference settings, e.g. inference.topk_classes=3 long_video=overlapping")
    p.set_defaults(func=run)


def inference_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``[inference.]key=value`` overrides; any other section is refused."""
    from ..inference.grouping import check_inference_config

    items = []
    for text in overrides:
        key = text.partition("=")[0].strip()
        if "." not in key:
            text = "inference." + text.strip()
        elif not key.startswith("inference."):
            raise TagvisError(f"override {text!r}: only inference.* settings apply to predict")
        items.append(text)
    try:
        cfg = apply_overrides(cfg, items)
        check_inference_config(cfg)
    except (KeyError, ValueError) as exc:
        raise TagvisError(exc.args[0] if exc.args else str(exc)) from None
    return cfg


def run(args: argparse.Namespace) -> int:
    if (args.ytvis or args.davis) and not args.split:
        raise TagvisError("--split is required with --ytvis and --davis")
    out = Path(args.out)
    if args.ytvis:
        json_out = out if out.suffix == ".json" else out / "results.json"
        check_files([json_out, json_out.with_suffix(".zip")], args.overwrite)  # before any work
        line = _predict(args, None)
    else:
        with staged_folder(out, args.overwrite) as staging:  # checked before any work, renamed when complete
            line = _predict(args, staging)
    print(json.dumps(line))
    return 0


def _predict(args: argparse.Namespace, staging: Path | None) -> dict[str, Any]:
    """Predict into ``staging`` (--davis, --video; its final name is --out) or the results file (--ytvis)."""
    from ..data.davis import DAVISDataset
    from ..data.video import decode_problem, read_video
    from ..data.ytvis import YTVISDataset
    from ..inference import predict_split, predict_video
    from ..inference.export import timing_summary, write_video_outputs, write_ytvis_results
    from ..model.checkpoint import check_categories, load_model
    from ..model.precision import resolve_precision
    from ..training.distributed import resolve_device

    device = resolve_device(args.device)
    dataset = None
    if args.ytvis:
        dataset = YTVISDataset(args.ytvis, args.split)
    elif args.davis:
        dataset = DAVISDataset(args.davis, args.split)
    # DAVIS unsupervised is class-agnostic (every class counts as "object"), so any checkpoint serves
    # it; YouTube-VIS results name categories, so the checkpoint's must be the dataset's.
    num_classes = len(dataset.categories) if args.ytvis else None
    model, cfg, categories = load_model(args.checkpoint, device, num_classes=num_classes)
    if args.ytvis:
        check_categories(args.checkpoint, categories, dataset.categories, args.ytvis)
    cfg = inference_overrides(cfg, args.overrides)
    try:  # before any work: a precision this device cannot run
        resolve_precision(cfg.inference.precision, device, "inference.precision")
    except ValueError as exc:
        raise TagvisError(str(exc)) from None
    out = Path(args.out)
    if dataset is None:
        sample = read_video(args.video)
        problem = decode_problem(sample.meta)
        if problem:
            print(f"warning: {args.video}: {problem}; predicting the decoded frames only", file=sys.stderr)
        prediction = predict_video(model, sample.frames, cfg, device)
        run = timing_summary([prediction.timing])
        outputs = write_video_outputs(sample.frames, prediction, staging, sample.frame_names, fps=sample.meta.get("fps") or 10.0)
        outputs.update(_video_extras(prediction, categories, staging))
        outputs = {k: str(out / Path(v).relative_to(staging)) for k, v in outputs.items()}
        if problem:
            run = {**run, "decode": {"decoded_frames": sample.meta["decoded_frames"],
                                     "declared_frames": sample.meta.get("declared_frames"),
                                     "error": sample.meta.get("decode_error")}}
    elif args.ytvis:
        entries, run = predict_split(model, dataset, cfg, device, categories=categories, progress=not args.no_progress)
        json_path, zip_path = write_ytvis_results(entries, out if out.suffix == ".json" else out / "results.json")
        outputs = {"results": str(json_path), "zip": str(zip_path)}
    else:
        _, run = predict_split(model, dataset, cfg, device, davis_dir=staging, progress=not args.no_progress)
        outputs = {"results_dir": str(out)}
    return {**run, "device": str(device), "outputs": outputs}


def _video_extras(prediction: Any, categories: list[dict[str, Any]], out: Path) -> dict[str, str]:
    """``instances.json`` (instance, class name, category id, score per entry) and ``tags.png``."""
    from ..utils.atomic import atomic_path, write_json
    from ..notebook.figures import tag_histogram_figure

    rows = [{"instance": int(m) + 1, "category_id": categories[int(c) - 1]["id"], "name": categories[int(c) - 1]["name"],
             "score": float(s)} for m, c, s in zip(prediction.entry_instance, prediction.classes, prediction.scores)]
    write_json(out / "instances.json", rows, indent=1)
    summary = prediction.tags
    fig = tag_histogram_figure(summary.frame_indices, summary.tag_map, summary.foreground,
                               summary.project(prediction.instance_tags))
    with atomic_path(out / "tags.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return {"instances": str(out / "instances.json"), "tags": str(out / "tags.png")}
