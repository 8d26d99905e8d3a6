"""Warnings raised inside a subcommand are shown once each, after the command ends."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import argparse, sys, warnings
    import tagvis_lib.cli as cli
    from tagvis_lib.errors import DataWarning

    def run(args):
        warnings.warn("a library's warning", UserWarning)
        warnings.warn("frame 3 is unreadable", DataWarning)
        return 0

    def noisy_parser():
        parser = argparse.ArgumentParser(prog="tagvis")
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("noisy").set_defaults(func=run)
        return parser

    cli.build_parser = noisy_parser
    sys.exit(cli.main(["noisy"]))
""")


def test_other_warnings_are_shown_once_and_the_command_returns():
    # Showing a warning while warnings were still being recorded appended it to the record being
    # shown: the command never returned and its memory grew until the kernel killed it (seen under
    # torchrun, where DDP on the CPU warns).
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("a library's warning") == 1
    assert "UserWarning" in proc.stderr
    assert proc.stderr.count("tagvis noisy: warning: frame 3 is unreadable") == 1
