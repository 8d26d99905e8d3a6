"""``tagvis data-check``: decode a whole dataset split and print its counts as one JSON line."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data-check",
        help="validate a dataset split (every frame and mask) and print its counts",
        description="Decode every frame and mask of a split, compare sizes, and print one JSON line "
        '{"videos", "frames", "instances", "categories", "same_category_pairs"}. Exits 2 with the file '
        "and field at the first problem.",
    )
    root = parser.add_mutually_exclusive_group(required=True)
    root.add_argument("--ytvis", metavar="ROOT", help="YouTube-VIS root (ROOT/<split>.json, ROOT/<split>/JPEGImages)")
    root.add_argument("--davis", metavar="ROOT", help="DAVIS root (JPEGImages/480p, Annotations_unsupervised/480p, ImageSets/2017)")
    parser.add_argument("--split", required=True, help="split name: train, valid, train_sub, ... (DAVIS: train, val)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset, open_dataset

    print(json.dumps(check_dataset(open_dataset(args.split, ytvis=args.ytvis, davis=args.davis))))
    return 0
