"""``tagvis synth OUT``: write the embedded synthetic benchmark (YouTube-VIS and DAVIS layouts)."""
from __future__ import annotations

import argparse
import json
import time

from ..constants import SYNTH_TRAIN_VIDEOS, SYNTH_VALID_VIDEOS


def _at_least(low: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write the embedded synthetic benchmark",
        description="Write OUT/ytvis/{train,valid}.json + frames and the same videos as OUT/DAVIS/. "
        "Deterministic per seed; valid.json carries annotations (local evaluation).",
    )
    parser.add_argument("out", help="output folder")
    parser.add_argument("--train-videos", type=_at_least(0), default=SYNTH_TRAIN_VIDEOS, help="videos in train (default %(default)s)")
    parser.add_argument("--valid-videos", type=_at_least(0), default=SYNTH_VALID_VIDEOS, help="videos in valid (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--height", type=_at_least(16), default=96, help="frame height (default %(default)s)")
    parser.add_argument("--width", type=_at_least(16), default=160, help="frame width (default %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synth import write_benchmark

    start = time.perf_counter()
    paths = write_benchmark(args.out, args.train_videos, args.valid_videos, args.seed, args.height, args.width)
    summary = {key: str(path) for key, path in paths.items()}
    summary.update(train_videos=args.train_videos, valid_videos=args.valid_videos,
                   seconds=round(time.perf_counter() - start, 2))
    print(json.dumps(summary))
    return 0
