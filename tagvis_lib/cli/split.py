"""``tagvis split ROOT``: hold out videos of ROOT/train.json as ROOT/valid_sub.json (+ train_sub.json)."""
from __future__ import annotations

import argparse
import json


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "split",
        help="hold out part of a YouTube-VIS train split for local validation",
        description="Write ROOT/train_sub.json and ROOT/valid_sub.json from ROOT/train.json, by whole "
        "videos, deterministic per seed, keeping every category in train where possible; prints the "
        "category balance as one JSON line.",
    )
    parser.add_argument("root", help="YouTube-VIS root holding train.json and train/JPEGImages")
    parser.add_argument("--holdout", type=_fraction, default=0.1, help="fraction of videos held out (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing train_sub.json / valid_sub.json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.split import split_ytvis
    from .outputs import check_files

    # a model trained on an earlier split would be scored on its own training videos: never silently
    check_files([Path(args.root) / "train_sub.json", Path(args.root) / "valid_sub.json"], args.overwrite)

    print(json.dumps(split_ytvis(args.root, args.holdout, args.seed)))
    return 0
