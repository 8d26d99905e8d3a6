"""Start-up and process time of the ``tagvis`` command next to the in-process evaluation time.

Rows: the bare interpreter, ``import tagvis_lib``, ``tagvis --help`` and ``tagvis evaluate ytvis`` /
``tagvis evaluate davis`` on the reference cases of ``eval_speed.py`` (50 videos x 36 frames at
360x640; 10 sequences x 50 frames at 480x854), each as the median wall time of --repeat fresh
processes. The evaluations are also timed in this process (library functions called directly, same
files, median of --repeat); the start-up share is the part of the process time not spent there.

    python benchmarks/startup.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_speed import make_davis_case, make_ytvis_case  # noqa: E402

from tagvis_lib.metrics import evaluate_davis, evaluate_ytvis  # noqa: E402

#: Process wall-time targets of issue 16 (seconds, on the project's 2-core machine).
TARGETS = {"help": 0.5, "ytvis": 1.1, "davis": 3.0}


def tagvis_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m tagvis_lib``."""
    script = shutil.which("tagvis", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "tagvis_lib"]


def run_process(argv: list[str]) -> tuple[float, str]:
    """Wall seconds of one process and its stdout (it must exit 0)."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return seconds, proc.stdout


def run_in_process(fn) -> tuple[float, dict]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="processes (and in-process runs) per row")
    args = parser.parse_args(argv)
    tagvis = tagvis_command()
    rows = []  # (case, process seconds, in-process seconds or None, target or None)
    for case, cmd, target in (("python -c pass", [sys.executable, "-c", "pass"], None),
                              ('python -c "import tagvis_lib"', [sys.executable, "-c", "import tagvis_lib"], None),
                              ("tagvis --help", [*tagvis, "--help"], TARGETS["help"])):
        rows.append((case, statistics.median(run_process(cmd)[0] for _ in range(args.repeat)), None, target))
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gt_json, res_json = make_ytvis_case(root)
        davis_root, davis_res = make_davis_case(root)
        cases = [
            ("tagvis evaluate ytvis (50 x 36, 360x640)", [*tagvis, "evaluate", "ytvis", str(gt_json), str(res_json)],
             lambda: evaluate_ytvis(gt_json, res_json), TARGETS["ytvis"]),
            ("tagvis evaluate davis (10 x 50, 480x854)", [*tagvis, "evaluate", "davis", str(davis_root), str(davis_res)],
             lambda: evaluate_davis(davis_root, davis_res, "val"), TARGETS["davis"]),
        ]
        for case, cmd, fn, target in cases:
            proc_s, lib_s = [], []
            for _ in range(args.repeat):  # alternated, so both see the same machine load
                seconds, stdout = run_process(cmd)
                proc_s.append(seconds)
                seconds, out = run_in_process(fn)
                lib_s.append(seconds)
                same &= json.loads(stdout) == json.loads(json.dumps(out))
            rows.append((case, statistics.median(proc_s), statistics.median(lib_s), target))
    print(f"command: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(tagvis))}; "
          f"median of {args.repeat} runs; process output equals the in-process result: {'yes' if same else 'NO'}")
    print()
    print("| case | process wall s | in-process s | start-up share | target s |")
    print("|---|---:|---:|---:|---:|")
    for case, proc, lib, target in rows:
        share = "" if lib is None else f"{(proc - lib) / proc:.0%}"
        print(f"| {case} | {proc:.3f} | {'' if lib is None else f'{lib:.3f}'} | {share} | "
              f"{'' if target is None else f'<= {target}'} |")


if __name__ == "__main__":
    main()
