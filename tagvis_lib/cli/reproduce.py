"""``tagvis reproduce``: all notebooks through papermill, tables and figures in figures/."""
from __future__ import annotations

import argparse
import json

from ..config import PROFILES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="run every notebook in order through papermill")
    p.add_argument("--profile", choices=PROFILES, default="cpu")
    p.add_argument("--runs", default="runs", help="executed notebooks go to RUNS/<profile>/notebooks")
    p.add_argument("--figures", default="figures", help="where tables and figures are written")
    p.add_argument("--device", default="auto")
    p.add_argument("--only", nargs="*", help="notebook name prefixes to run (default: all)")
    p.add_argument("--no-refresh", action="store_true",
                   help="leave the outputs of the committed notebooks as they are (refreshed by default at the cpu profile)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..notebook.reproduce import reproduce

    runs = reproduce(args.profile, args.runs, args.figures, args.device, args.only,
                     refresh=False if args.no_refresh else None)
    for r in runs:
        print(json.dumps({"notebook": r.notebook, "output": r.output, "seconds": round(r.seconds, 1)}))
    return 0
