"""``tagvis train``: train TagVIS on a YouTube-VIS or DAVIS split (also under ``torchrun``).

Writes ``OUT/config.json``, ``OUT/metrics.jsonl``, ``OUT/checkpoint_last.pt`` and
``OUT/model_final.pt``; prints one JSON line with the run summary (rank 0).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..config import PROFILES, apply_overrides, profile_config
from ..errors import TagvisError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a model", description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--ytvis", metavar="ROOT", help="YouTube-VIS root (ROOT/<split>.json)")
    source.add_argument("--davis", metavar="ROOT", help="DAVIS root (ROOT/ImageSets/2017/<split>.txt)")
    p.add_argument("--split", default="train", help="training split (default %(default)s)")
    p.add_argument("--profile", choices=PROFILES, default="cpu", help="settings profile (default %(default)s)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint_last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. train.epochs=5 model.tag_dim=2 loss.margin=2")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training import train

    try:
        cfg = apply_overrides(profile_config(args.profile), args.overrides)
    except (KeyError, ValueError) as exc:
        raise TagvisError(exc.args[0] if exc.args else str(exc)) from None
    if args.resume and not (Path(args.out) / "checkpoint_last.pt").exists():
        raise TagvisError(f"{args.out}: nothing to resume (no checkpoint_last.pt); leave out --resume to start a new run")
    try:
        summary = train(cfg, ytvis_root=args.ytvis, davis_root=args.davis, split=args.split, out_dir=args.out,
                        resume=args.resume, progress=not args.no_progress)
    except ValueError as exc:  # a config value the trainer cannot run
        raise TagvisError(str(exc)) from None
    if summary["rank"] == 0:
        print(json.dumps(summary))
    return 0
