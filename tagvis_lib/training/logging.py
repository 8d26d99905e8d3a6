"""The metrics log of a run: one JSON object per line in ``RUN_DIR/metrics.jsonl``.

Training lines carry ``{"event": "train", "step", "epoch", <each loss term>, "total", "lr",
"clips_per_s", "time"}``; validation lines ``{"event": "val", "step", "epoch", <metrics>}``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..utils.atomic import atomic_open


class MetricsLog:
    """Append-only JSON-lines writer; each line is flushed as soon as it is written."""

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
        """Open ``path`` for appending; ``resume_step`` drops lines logged after that step.

        A run killed after logging step ``s`` but before checkpointing it resumes from an earlier
        step and logs those steps again; dropping the stale lines keeps one line per step.
        Without ``resume_step`` (a new run) an existing log is replaced.
        """
        self.path = Path(path)
        kept = read_metrics(self.path) if resume_step is not None and self.path.exists() else []
        kept = [row for row in kept if row.get("step", 0) <= (resume_step or 0)]
        with atomic_open(self.path, "w", encoding="utf-8") as fh:
            for row in kept:
                fh.write(json.dumps(row) + "\n")
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        """Append one line (non-finite floats are written as null)."""
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        self._fh.write(json.dumps(clean) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_metrics(path: str | os.PathLike, event: str | None = None) -> list[dict[str, Any]]:
    """The lines of a metrics log (optionally only those of one ``event``); a torn last line is skipped."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event is None or row.get("event") == event:
                rows.append(row)
    return rows
