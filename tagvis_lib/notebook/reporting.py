"""Tables I, II and III in the paper's layout, with the paper's values beside the measured ones.

Tables are written as Markdown and CSV (atomically); figures as PNG and PDF. Measured metrics come
in on the 0-1 scale of :mod:`tagvis_lib.metrics` and are shown in percent like the paper.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..ablations import PAPER_TABLE3, TABLE3_ABLATIONS, TABLE3_GROUPS
from ..utils.atomic import atomic_open, atomic_path

#: Table I of the paper (YouTube-VIS 2019 val): method -> (mAP, AP50, AP75, AR1, AR10); None = "-".
PAPER_TABLE1_ROWS: dict[str, tuple[float | None, ...]] = {
    "DeepSORT": (26.1, 42.9, 26.1, 27.8, 31.3),
    "FEELVOS": (26.9, 42.0, 29.7, 29.9, 33.4),
    "OSMN": (27.5, 45.1, 29.1, 28.6, 33.1),
    "MaskTrack": (30.3, 51.1, 32.6, 31.0, 35.5),
    "STEm-Seg": (34.6, 55.8, 37.9, 34.4, 41.6),
    "MaskProp": (46.6, None, 51.2, 44.0, 52.6),
    "Propose-Reduce": (47.6, 71.6, 51.8, 46.3, 56.0),
    "Ours": (51.2, 74.8, 57.9, 46.3, 57.6),
}
#: Table II of the paper (DAVIS'19 unsupervised val): method -> (J&F, J mean, F mean, fps).
PAPER_TABLE2_ROWS: dict[str, tuple[float | str | None, ...]] = {
    "RVOS": (41.2, 36.8, 45.7, "20+"),
    "KIS": (59.9, None, None, None),
    "AGNN": (61.1, 58.9, 63.2, None),
    "STEm-Seg": (64.7, 61.5, 67.8, 7),
    "UnOVOST": (67.0, 65.6, 68.4, "<1"),
    "Propose-Reduce": (70.4, 67.0, 73.8, None),
    "Ours": (74.3, 72.2, 76.4, 17),
}

TABLE1_COLUMNS = ["Method", "Source", "mAP", "AP@50", "AP@75", "AR@1", "AR@10", "mAP 95% CI", "seeds"]
#: "video fps": every frame of the video per second, end to end (the paper's column, which it does not
#: define further); "network fps": frames through the network per second of network time (ours only).
TABLE2_COLUMNS = ["Method", "Source", "J&F", "J-Mean", "F-Mean", "video fps", "network fps", "Device",
                  "J&F 95% CI", "seeds"]
TABLE3_COLUMNS = ["Group", "w/o", "J&F (paper)", "J (paper)", "F (paper)", "J&F", "J&F 95% CI", "J-Mean", "F-Mean",
                  "seeds", "ΔJ&F vs Ours", "Δ 95% CI", "differs"]


def _pct(value: float | None) -> float | None:
    return None if value is None or value < 0 else round(100.0 * float(value), 1)


def _per_seed(measured: Mapping[str, float] | Sequence[Mapping[str, float]]) -> list[Mapping[str, float]]:
    """One metrics dict per training seed (a single dict is one seed)."""
    runs = [measured] if isinstance(measured, Mapping) else list(measured)
    if not runs:
        raise ValueError("no measured run")
    return runs


def _seed_mean(runs: Sequence[Mapping[str, float]], key: str) -> float:
    return sum(float(r[key]) for r in runs) / len(runs)


def table1_rows(measured: Mapping[str, float] | Sequence[Mapping[str, float]],
                label: str = "tagvis (this run)") -> list[dict[str, Any]]:
    """Table I: the paper's rows, then ours (keys AP, AP50, AP75, AR1, AR10, 0-1).

    ``measured``: one run's metrics, or one per training seed; ours is then the mean over the seeds,
    with the Student-t 95% interval of the mAP and the seed count (no interval for one seed).
    """
    runs = _per_seed(measured)
    rows = [dict(zip(TABLE1_COLUMNS, (m, "paper", *v, None, None))) for m, v in PAPER_TABLE1_ROWS.items()]
    keys = ("AP", "AP50", "AP75", "AR1", "AR10")
    _, low, high = mean_interval([float(r["AP"]) for r in runs])
    rows.append(dict(zip(TABLE1_COLUMNS, (label, "measured", *(_pct(_seed_mean(runs, k)) for k in keys),
                                          _pct_interval(low, high), len(runs)))))
    return rows


def table2_rows(measured: Mapping[str, float] | Sequence[Mapping[str, float]], video_fps: float,
                network_fps: float, device: str, label: str = "tagvis (this run)") -> list[dict[str, Any]]:
    """Table II: the paper's rows, then ours (keys J&F-Mean, J-Mean, F-Mean, 0-1) with both fps and device.

    ``measured``: one run's metrics, or one per training seed (mean, the J&F's 95% interval, the count).
    """
    runs = _per_seed(measured)
    rows = [dict(zip(TABLE2_COLUMNS, (m, "paper", *v, None, "V100" if m == "Ours" else None, None, None)))
            for m, v in PAPER_TABLE2_ROWS.items()]
    _, low, high = mean_interval([float(r["J&F-Mean"]) for r in runs])
    rows.append(dict(zip(TABLE2_COLUMNS, (
        label, "measured", *(_pct(_seed_mean(runs, k)) for k in ("J&F-Mean", "J-Mean", "F-Mean")),
        round(float(video_fps), 1), round(float(network_fps), 1), device, _pct_interval(low, high), len(runs),
    ))))
    return rows


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float | None, float | None]:
    """Mean and Student-t ``level`` interval of ``values`` (seeds); the interval is None for one value."""
    import numpy as np
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if x.size < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def paired_differences(records: Sequence[Mapping[str, Any]], metric: str = "J&F-Mean",
                       base: str = "Ours") -> dict[str, dict[str, Any]]:
    """Per Table III row: seeds, mean and 95% interval of ``metric``, and the paired difference to ``base``.

    ``records``: one per (row, seed) with ``row``, ``seed`` and ``metrics`` (0-1), as
    :func:`tagvis_lib.training.sweep.collect` writes them. The difference of a row uses the seeds it shares
    with ``base`` (same seed = same initialisation and data order): ``diff`` mean and interval,
    ``pairs`` their count, ``differs`` True/False when the interval excludes/includes 0 (None
    with fewer than 2 pairs).
    """
    by_row: dict[str, dict[int, float]] = {}
    for r in records:
        if r["row"] not in TABLE3_ABLATIONS:
            raise KeyError(f"rows not in Table III: {r['row']!r}")
        seeds = by_row.setdefault(r["row"], {})
        if int(r["seed"]) in seeds:
            raise ValueError(f"row {r['row']!r} has seed {r['seed']} twice")
        seeds[int(r["seed"])] = float(r["metrics"][metric])
    reference = by_row.get(base, {})
    out: dict[str, dict[str, Any]] = {}
    for row, seeds in by_row.items():
        mean, low, high = mean_interval(list(seeds.values()))
        entry: dict[str, Any] = {"seeds": sorted(seeds), "mean": mean, "low": low, "high": high}
        shared = sorted(set(seeds) & set(reference))
        if row != base and shared:
            d_mean, d_low, d_high = mean_interval([seeds[k] - reference[k] for k in shared])
            entry.update(diff=d_mean, diff_low=d_low, diff_high=d_high, pairs=len(shared),
                         differs=None if d_low is None else not d_low <= 0.0 <= d_high)
        out[row] = entry
    return out


def _pct_interval(low: float | None, high: float | None) -> str | None:
    return None if low is None else f"[{100 * low:.1f}, {100 * high:.1f}]"


def table3_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Table III: every row of the paper in its order, paper values beside the seeds' mean and intervals.

    ``records`` as for :func:`paired_differences` (one per row and seed); a row not measured is
    shown empty. Columns :data:`TABLE3_COLUMNS`: J&F, J-Mean, F-Mean are means over the seeds (in
    %), ``J&F 95% CI`` their Student-t interval, ``seeds`` the count, ``ΔJ&F vs Ours`` the mean
    paired difference with its interval, ``differs`` yes/no (interval excludes 0) or "-" (one pair).
    """
    jf = paired_differences(records, "J&F-Mean")
    means = {m: {row: v["mean"] for row, v in paired_differences(records, m).items()} for m in ("J-Mean", "F-Mean")}
    rows = []
    for name in TABLE3_ABLATIONS:
        e = jf.get(name, {})
        differs = e.get("differs")
        rows.append(dict(zip(TABLE3_COLUMNS, (
            TABLE3_GROUPS[name], name, *PAPER_TABLE3[name],
            _pct(e.get("mean")), _pct_interval(e.get("low"), e.get("high")),
            _pct(means["J-Mean"].get(name)), _pct(means["F-Mean"].get(name)), len(e.get("seeds", [])) or None,
            None if "diff" not in e else round(100 * e["diff"], 1), _pct_interval(e.get("diff_low"), e.get("diff_high")),
            None if "diff" not in e else ("-" if differs is None else "yes" if differs else "no"),
        ))))
    return rows


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], directory: str | os.PathLike,
                name: str, title: str = "") -> tuple[Path, Path]:
    """Write ``name.md`` and ``name.csv`` into ``directory``; return both paths."""
    directory = Path(directory)
    md, csv_path = directory / f"{name}.md", directory / f"{name}.csv"
    with atomic_open(md, "w", encoding="utf-8") as fh:
        fh.write((f"**{title}**\n\n" if title else "") + to_markdown(rows, columns))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows([{c: ("" if r.get(c) is None else r.get(c)) for c in columns} for r in rows])
    with atomic_open(csv_path, "w", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())
    return md, csv_path


def read_table(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a table written by :func:`write_table` back from its CSV."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def save_figure(fig: Any, directory: str | os.PathLike, name: str, dpi: int = 120) -> tuple[Path, Path]:
    """Save a matplotlib figure as ``name.png`` and ``name.pdf`` (atomically); return both paths.

    The PDF carries no creation date, so an unchanged figure gives unchanged bytes.
    """
    directory = Path(directory)
    paths = []
    for ext in ("png", "pdf"):
        target = directory / f"{name}.{ext}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight",
                        metadata={"CreationDate": None} if ext == "pdf" else None)
        paths.append(target)
    return paths[0], paths[1]


def diagnosis_rows(by_split: Mapping[str, Any], ap: Mapping[str, float] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per split of :class:`tagvis_lib.metrics.diagnostics.Diagnosis` summaries, with AP where given.

    Returns (rows, columns), the data split in column "evaluated on" (the column "split" counts the
    tracks split over several predictions); the difference of two rows (e.g. train - valid) is the
    train/valid gap.
    """
    rows = []
    for split, diagnosis in by_split.items():
        row = {"evaluated on": split, **({"AP": round(100 * ap[split], 1)} if ap and split in ap else {}), **diagnosis.summary()}
        rows.append(row)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return rows, columns


def confusion_rows(diagnosis: Any, names: Mapping[int, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The class confusion of a Diagnosis as rows (ground truth) x columns (predicted, then "no match")."""
    columns = ["ground truth"] + [names[c] for c in diagnosis.category_ids] + ["no match"]
    rows = [dict(zip(columns, [names[c], *map(int, diagnosis.confusion[i])]))
            for i, c in enumerate(diagnosis.category_ids)]
    return rows, columns
