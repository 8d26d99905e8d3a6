"""Figures of the notebooks that are not about predictions: clip sampling, loss curves, the tagging
terms on toy tags, the Table III chart. Overlays and prediction figures are in :mod:`tagvis_lib.viz`.

Like :mod:`tagvis_lib.viz`, functions return ``matplotlib.figure.Figure`` objects built without
pyplot; :func:`tagvis_lib.reporting.save_figure` writes them as PNG and PDF.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from .data.clips import ClipIndices

#: Colours shared by the figures: kept frames, dropped runs, padding, paper values, our values.
KEPT, DROPPED, PADDED, PAPER, OURS = "#1f77b4", "#d62728", "#bbbbbb", "#999999", "#1f77b4"
TERMS = ("spectra", "specter", "tempra", "temper")


def clip_timeline_figure(num_frames: int, clips: Sequence[ClipIndices], inference: tuple[np.ndarray, np.ndarray],
                         labels: Sequence[str] | None = None) -> Figure:
    """Which frames of a video of ``num_frames`` frames make each clip, on a common timeline.

    One row per training clip (``clips``, e.g. the draws of successive epochs): kept frames as blue
    ticks, dropped runs of consecutive frames as red spans; a last row for the inference clip
    ``inference = (indices (T,), valid (T,))``, with padding repeats in grey.
    """
    rows = len(clips) + 1
    fig = Figure(figsize=(9, 0.45 * rows + 1.1))
    ax = fig.add_subplot()
    names = list(labels) if labels is not None else [f"training clip {i + 1}" for i in range(len(clips))]
    for r, clip in enumerate(clips):
        y = rows - 1 - r
        for start, length in clip.drops:
            ax.add_patch(_span(start, length, y, DROPPED))
        kept = clip.indices[clip.valid]
        ax.vlines(kept, y - 0.3, y + 0.3, color=KEPT, lw=1.5)
        ax.vlines(clip.indices[~clip.valid], y - 0.3, y + 0.3, color=PADDED, lw=3)
    indices, valid = (np.asarray(a) for a in inference)
    ax.vlines(indices[valid], -0.3, 0.3, color="black", lw=1.5)
    if (~valid).any():
        ax.vlines(indices[~valid], -0.3, 0.3, color=PADDED, lw=3)
    ax.set_yticks(range(rows), ["inference clip", *names[::-1]])
    ax.set_xlim(-1, num_frames)
    ax.set_ylim(-0.7, rows - 0.3)
    ax.set_xlabel(f"frame of the video ({num_frames} frames)")
    ax.legend(handles=[Patch(color=KEPT, label="kept frame"), Patch(color=DROPPED, label="dropped run (1-5 frames)"),
                       Patch(color="black", label="inference frame"), Patch(color=PADDED, label="padding (invalid)")],
              loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _span(start: int, length: int, y: float, color: str) -> Rectangle:
    return Rectangle((start - 0.5, y - 0.3), length, 0.6, color=color, alpha=0.35, lw=0)


def loss_curves_figure(rows: Sequence[Mapping[str, Any]], terms: Sequence[str] = (*TERMS, "ce", "total")) -> Figure:
    """One panel per loss term against the step, from the ``"train"`` lines of ``metrics.jsonl``.

    A term spanning more than 30x (and never 0) is drawn on a log axis, the others on a linear one.
    """
    steps = np.array([r["step"] for r in rows])
    fig = Figure(figsize=(3.2 * min(3, len(terms)), 2.4 * int(np.ceil(len(terms) / 3))))
    for i, term in enumerate(terms):
        ax = fig.add_subplot(int(np.ceil(len(terms) / 3)), min(3, len(terms)), i + 1)
        values = np.array([np.nan if r.get(term) is None else r[term] for r in rows], dtype=np.float64)
        ax.plot(steps, values, color=OURS, lw=1.2, marker="." if len(steps) < 30 else None)
        low, high = np.nanmin(values, initial=np.inf), np.nanmax(values, initial=-np.inf)
        if np.isfinite(low) and low > 0 and high / low > 30:
            ax.set_yscale("log")
        ax.set_title(f"L_{term}" if term in TERMS else term, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def tagging_terms_figure(sweeps: Mapping[str, Mapping[str, np.ndarray]], margin: float) -> Figure:
    """The four tagging terms against each swept toy parameter (``tagging_term_sweep`` results).

    ``sweeps`` maps ``"offset"``, ``"spread"`` or ``"drift"`` to ``{"values", "spectra", ...}``.
    The push terms fall to 0 once the instances are ``margin`` apart; the pull terms grow with the
    spread of the pixels (spectra) and the drift of the frame means (tempra, and spectra too, since
    it pulls to the clip mean).
    """
    xlabels = {"offset": "distance between the two instances' tags", "spread": "spread of pixel tags (std)",
               "drift": "drift of the frame means per frame"}
    fig = Figure(figsize=(4 * len(sweeps), 3.4))
    for i, (name, sweep) in enumerate(sweeps.items()):
        ax = fig.add_subplot(1, len(sweeps), i + 1)
        for term in TERMS:
            values = np.asarray(sweep[term], dtype=np.float64)
            ax.plot(sweep["values"], values if name == "offset" else np.maximum(values, 1e-3), label=f"L_{term}", lw=1.5)
        if name == "offset":  # the push terms are linear in the distance: a linear axis shows it
            ax.axvline(margin, color="black", ls=":", lw=1)
            ax.annotate("G", (margin, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", fontsize=9)
        else:  # the pull terms grow quadratically over orders of magnitude
            ax.set_yscale("log")
        ax.set_xlabel(xlabels.get(name, name), fontsize=9)
        ax.set_ylabel("loss")
    handles, names = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(TERMS), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def table3_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Horizontal bars of J&F per Table III row: the paper's value beside ours.

    ``rows`` are :func:`tagvis_lib.reporting.table3_rows` (keys ``w/o``, ``J&F (paper)``, ``J&F``,
    ``J&F 95% CI``); a row not measured has no bar of ours, one with an interval an error bar.
    """
    names = [r["w/o"] for r in rows]
    paper = np.array([r["J&F (paper)"] for r in rows], dtype=np.float64)
    ours = np.array([np.nan if r.get("J&F") is None else r["J&F"] for r in rows], dtype=np.float64)
    y = np.arange(len(rows))[::-1]
    fig = Figure(figsize=(8, 0.42 * len(rows) + 1.2))
    ax = fig.add_subplot()
    ax.barh(y + 0.2, paper, height=0.38, color=PAPER, label="paper (DAVIS'19 val)")
    ax.barh(y - 0.2, np.nan_to_num(ours), height=0.38, color=OURS, label="this run (mean of the seeds)")
    bounds = [_interval(r.get("J&F 95% CI")) for r in rows]
    for yy, value, bound in zip(y, ours, bounds):
        if bound is not None and np.isfinite(value):
            ax.errorbar(value, yy - 0.2, xerr=[[value - bound[0]], [bound[1] - value]], color="black", capsize=2, lw=0.8)
    for yy, value in zip(y, ours):
        if np.isfinite(value):
            ax.text(value + 0.5, yy - 0.2, f"{value:.1f}", va="center", fontsize=7)
    ax.set_yticks(y, [n if len(n) < 32 else n.replace(" + ", " +\n", 1) for n in names], fontsize=8)
    ax.set_xlabel("J&F (%)")
    ax.set_xlim(0, 100)
    ax.set_title("Table III: without each component (J&F)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _interval(text: Any) -> tuple[float, float] | None:
    """``"[low, high]"`` (a table cell) -> (low, high); None for an empty cell."""
    if not text:
        return None
    low, high = str(text).strip("[]").split(",")
    return float(low), float(high)


def presence_figure(present: np.ndarray, names: Sequence[str], colors: np.ndarray | None = None) -> Figure:
    """Which instance is visible in which frame: present bool (N, T) as one bar per instance."""
    present = np.asarray(present, dtype=bool)
    fig = Figure(figsize=(8, 0.35 * len(present) + 0.9))
    ax = fig.add_subplot()
    for n, row in enumerate(present):
        color = OURS if colors is None else np.asarray(colors[n]) / 255.0
        frames = np.flatnonzero(row)
        ax.broken_barh([(f - 0.5, 1) for f in frames], (len(present) - 1 - n - 0.35, 0.7), color=color)
    ax.set_yticks(range(len(present))[::-1], list(names))
    ax.set_xlim(-0.5, present.shape[1] - 0.5)
    ax.set_xlabel("frame")
    ax.set_title("instances present per frame", fontsize=10)
    fig.tight_layout()
    return fig


def tag_maps_figure(tags: np.ndarray, titles: Sequence[str] | None = None, cmap: str = "turbo") -> Figure:
    """Scalar tag maps (T, H, W) side by side on a shared colour scale, with a colour bar."""
    tags = np.asarray(tags, dtype=np.float64)
    fig = Figure(figsize=(2.2 * len(tags) + 0.8, 2.0))
    axes = [fig.add_subplot(1, len(tags), t + 1) for t in range(len(tags))]
    for t, ax in enumerate(axes):
        image = ax.imshow(tags[t], cmap=cmap, vmin=tags.min(), vmax=tags.max(), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(titles[t] if titles is not None else f"frame {t}", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label="tag")
    return fig
