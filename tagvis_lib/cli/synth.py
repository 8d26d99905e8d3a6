"""``tagvis synth OUT``: write the embedded synthetic benchmark (YouTube-VIS and DAVIS layouts)."""
from __future__ import annotations

import argparse
import json
import time

from ..constants import SYNTH_DEFAULTS


def _at_least(low: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


def _defaults(field: str) -> str:
    return ", ".join(f"{style} {sizes[field]}" for style, sizes in SYNTH_DEFAULTS.items())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write the embedded synthetic benchmark",
        description="Write OUT/ytvis/{train,valid,test}.json + frames and the same videos as "
        "OUT/DAVIS/ (splits train, val, test-dev). Deterministic per seed and style; every split carries "
        "annotations (local evaluation). --style simple: flat-shaded shapes on procedural patterns; "
        "--style textured: natural-image textures, a panning and zooming camera, frames without objects.",
    )
    parser.add_argument("out", help="output folder")
    parser.add_argument("--style", choices=tuple(SYNTH_DEFAULTS), default="simple", help="default %(default)s")
    parser.add_argument("--train-videos", type=_at_least(0), default=None, help=f"videos in train ({_defaults('n_train')})")
    parser.add_argument("--valid-videos", type=_at_least(0), default=None, help=f"videos in valid ({_defaults('n_valid')})")
    parser.add_argument("--test-videos", type=_at_least(0), default=None, help=f"videos in test ({_defaults('n_test')}; 0: none)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    parser.add_argument("--height", type=_at_least(16), default=None, help=f"frame height ({_defaults('height')})")
    parser.add_argument("--width", type=_at_least(16), default=None, help=f"frame width ({_defaults('width')})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.synth import write_benchmark
    from .outputs import staged_folder

    sizes = dict(SYNTH_DEFAULTS[args.style])
    for key, value in (("n_train", args.train_videos), ("n_valid", args.valid_videos), ("n_test", args.test_videos),
                       ("height", args.height), ("width", args.width)):
        if value is not None:
            sizes[key] = value
    start = time.perf_counter()
    out = Path(args.out)
    with staged_folder(out, args.overwrite) as staging:  # no old frames left beside new ones
        paths = write_benchmark(staging, seed=args.seed, style=args.style, **sizes)
    summary = {key: str(out / Path(path).relative_to(staging)) for key, path in paths.items()}
    summary.update(style=args.style, train_videos=sizes["n_train"], valid_videos=sizes["n_valid"],
                   test_videos=sizes["n_test"], seconds=round(time.perf_counter() - start, 2))
    print(json.dumps(summary))
    return 0
