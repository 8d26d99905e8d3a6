"""The ``tagvis`` command: a thin layer of subcommands over the library.

Each subcommand lives in its own module of this package with ``register(subparsers)``, which adds
its parser and sets ``func`` to a callable taking the parsed arguments and returning an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

#: Subcommand modules, in the order ``tagvis --help`` lists them.
COMMANDS = ["synth", "data_check", "split", "train", "predict", "evaluate", "ablate", "reproduce"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagvis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def report_warnings(caught: list[warnings.WarningMessage], command: str) -> None:
    """Print recorded warnings: the package's DataWarnings as one line each, others as Python shows them."""
    from ..errors import DataWarning

    for w in caught:
        if issubclass(w.category, DataWarning):
            print(f"tagvis {command}: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from ..errors import DataWarning, TagvisError

    args = build_parser().parse_args(argv)
    try:
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DataWarning)
                return int(args.func(args) or 0)
        finally:
            # Shown once the recording has stopped: inside it, showwarning would append to `caught`.
            report_warnings(caught, args.command)
    except TagvisError as exc:
        print(f"tagvis {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print(f"tagvis {args.command}: interrupted", file=sys.stderr)
        return 130
