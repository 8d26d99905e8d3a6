"""``tagvis evaluate``: the official YouTube-VIS and DAVIS 2017 numbers of a results file or folder.

    tagvis evaluate ytvis GT_JSON RESULTS_JSON
    tagvis evaluate davis DAVIS_ROOT RESULTS_DIR --set val

Each prints one JSON line: AP, AP50, AP75, APs, APm, APl, AR1, AR10 (0-1 scale) for YouTube-VIS;
J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay and per-sequence J and F for DAVIS.
"""
from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="official YouTube-VIS / DAVIS 2017 metrics of results",
                       description=__doc__.splitlines()[0])
    bench = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    yt = bench.add_parser("ytvis", help="YouTube-VIS AP/AR of a results JSON")
    yt.add_argument("gt_json", help="ground truth in the train.json schema (e.g. valid_sub.json)")
    yt.add_argument("results_json", help="list of {video_id, category_id, score, segmentations}")
    yt.set_defaults(func=run_ytvis)
    dv = bench.add_parser("davis", help="DAVIS 2017 unsupervised J&F of a results folder")
    dv.add_argument("davis_root", help="DAVIS folder with Annotations_unsupervised and ImageSets")
    dv.add_argument("results_dir", help="folder of <sequence>/<frame>.png label maps")
    dv.add_argument("--set", default="val", help="ImageSets/2017/<set>.txt lists the sequences")
    dv.add_argument("--sequences", nargs="*", help="evaluate only these sequences")
    dv.add_argument("--workers", type=int, default=1, help="threads for decoding and scoring")
    dv.add_argument("--count-void", action="store_true",
                    help="count void pixels (label 255) as background in J and F; NOT the official numbers, "
                         "which leave void out")
    dv.set_defaults(func=run_davis)


def run_ytvis(args: argparse.Namespace) -> int:
    from ..utils.malloc import keep_freed_memory
    from ..metrics import evaluate_ytvis

    keep_freed_memory()
    print(json.dumps(evaluate_ytvis(args.gt_json, args.results_json)))
    return 0


def run_davis(args: argparse.Namespace) -> int:
    from ..utils.malloc import keep_freed_memory
    from ..metrics import evaluate_davis

    keep_freed_memory()
    out = evaluate_davis(args.davis_root, args.results_dir, args.set, args.sequences,
                         count_void=args.count_void, workers=args.workers)
    if args.count_void:
        print("tagvis evaluate davis: --count-void counts void pixels as background; these are NOT the "
              "official DAVIS numbers (the official evaluation leaves void out of J and F)", file=sys.stderr)
    print(json.dumps(out))
    return 0
