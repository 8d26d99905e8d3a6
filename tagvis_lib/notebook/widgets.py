"""An interactive viewer of one predicted video (ipywidgets), with static images when run headless.

:func:`clip_viewer` shows a video with its predicted instances: a frame slider (and a play button),
one toggle per instance, and three views: ``instances`` (masks coloured by tag, as in the paper's
Fig. 5), ``tags`` (the tag map of the nearest processed frame, same colour scale, foreground only)
and ``semantic`` (the semantic branch's class per pixel, as in Fig. 6). When no widget frontend is
attached (papermill, nbconvert, a plain console) it returns a static figure of a few frames in every
view instead, so executed notebooks keep a picture.

Colours: an instance's colour is its tag on the projection axis of the prediction's
:class:`~tagvis_lib.inference.TagSummary` (the tag itself when D = 1) through the ``turbo`` colormap,
the range of the instance tags spanning 0.1..0.9 of it, as in :func:`tagvis_lib.notebook.figures.instance_colors`.
"""
from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from ..inference import VideoPrediction
from .figures import class_colors, instance_colors, overlay_masks

VIEWS = ("instances", "tags", "semantic")
CMAP = "turbo"


def frontend_attached() -> bool:
    """Whether an interactive frontend (JupyterLab, Notebook 7, VS Code) runs this kernel's cells.

    Such a frontend sends execute requests that allow stdin (``input()`` works there); headless
    executions through nbclient (papermill, ``nbconvert --execute``) never do. The ipywidgets
    control comm counts too where a frontend opens it (JupyterLab 4 with ipywidgets 8.1 does not,
    so it cannot be the test on its own). False outside a kernel.
    """
    try:
        from ipywidgets import Widget
    except ImportError:
        return False
    if getattr(Widget, "_control_comm", None) is not None:
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", False))


def live_output() -> bool:
    """Whether progress bars can be seen: outside a Jupyter kernel (a terminal or script), or in a kernel
    with a widget frontend attached. A headless kernel (papermill) would only store their first frame."""
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or not hasattr(shell, "kernel") or frontend_attached()


def tag_scale(prediction: VideoPrediction) -> tuple[np.ndarray, float, float]:
    """(instance values (M,), vmin, vmax): the instances' projected tags and the colour range."""
    tags = prediction.instance_tags
    values = prediction.tags.project(tags) if prediction.tags is not None else tags[:, 0]
    values = np.asarray(values, dtype=np.float64)
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    if hi - lo < 1e-6:
        lo, hi = lo - 1.0, hi + 1.0
    return values, lo, hi


def _nearest_processed(prediction: VideoPrediction, frame: int) -> int:
    return int(np.abs(prediction.tags.frame_indices - frame).argmin())


def _upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of (h, w) to ``size`` (pixel centres aligned)."""
    h, w = grid.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
    return grid[rows[:, None], cols[None, :]]


def render_view(frames: np.ndarray, prediction: VideoPrediction, frame: int, view: str = "instances",
                visible: Sequence[bool] | None = None) -> np.ndarray:
    """One frame of the viewer: uint8 (H, W, 3).

    frames: uint8 (L, H, W, 3); ``visible``: (M,) instances shown (default all). ``tags`` and
    ``semantic`` need ``prediction.tags`` (predicted with ``keep_tags=True``).
    """
    if view not in VIEWS:
        raise ValueError(f"view {view!r}: expected one of {VIEWS}")
    image = np.asarray(frames[frame])
    labels = prediction.labels[frame].astype(np.int64)
    shown = np.ones(prediction.num_instances, dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    labels = np.where(np.concatenate([[False], shown])[labels], labels, 0)
    values, lo, hi = tag_scale(prediction)
    colors = instance_colors(values, cmap=CMAP, vmin=lo, vmax=hi)
    if view == "instances":
        return overlay_masks(image, labels, colors)
    if prediction.tags is None:
        raise ValueError(f"view {view!r} needs the prediction's tag summary (predict with keep_tags=True)")
    p = _nearest_processed(prediction, frame)
    size = image.shape[:2]
    if view == "semantic":
        semantic = _upsample(prediction.tags.semantic[p].astype(np.int64), size)
        palette = class_colors(int(max(semantic.max(), 1)))
        return overlay_masks(image, semantic, palette[1:], alpha=0.6, outline=False)
    tag_map = _upsample(prediction.tags.tag_map[p].astype(np.float64), size)
    foreground = _upsample(prediction.tags.foreground[p], size)
    rgb = colormaps[CMAP](0.1 + 0.8 * np.clip((tag_map - lo) / (hi - lo), 0, 1))[..., :3] * 255
    out = np.where(foreground[..., None], rgb, 0.35 * image)
    edges = overlay_masks(np.zeros_like(image), labels, np.full((max(len(colors), 1), 3), 255, np.uint8), alpha=0.0)
    return np.where(edges.any(-1, keepdims=True), 255, out).round().clip(0, 255).astype(np.uint8)


def instance_names(prediction: VideoPrediction, class_names: Sequence[str] | None = None) -> list[str]:
    """Label of each instance: ``"<id>: <class> <score>"`` from its best-scored entry."""
    names = []
    for m in range(prediction.num_instances):
        entry = int(np.flatnonzero(prediction.entry_instance == m)[0])
        c = int(prediction.classes[entry])
        name = class_names[c - 1] if class_names is not None and 0 < c <= len(class_names) else f"class {c}"
        names.append(f"{m + 1}: {name} {prediction.scores[entry]:.2f}")
    return names


def static_views(frames: np.ndarray, prediction: VideoPrediction, shown_frames: int = 4,
                 views: Sequence[str] | None = None) -> Figure:
    """Figure with one row per view and ``shown_frames`` frames spread over the video."""
    views = [v for v in (views or VIEWS) if v == "instances" or prediction.tags is not None]
    picks = np.unique(np.linspace(0, len(frames) - 1, shown_frames).round().astype(int))
    fig = Figure(figsize=(2.6 * len(picks), 2.0 * len(views)))
    for r, view in enumerate(views):
        for c, f in enumerate(picks):
            ax = fig.add_subplot(len(views), len(picks), r * len(picks) + c + 1)
            ax.imshow(render_view(frames, prediction, int(f), view))
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {f}", fontsize=9)
            if c == 0:
                ax.set_ylabel(view, fontsize=9)
    fig.tight_layout()
    return fig


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def clip_viewer(frames: np.ndarray, prediction: VideoPrediction, class_names: Sequence[str] | None = None,
                interactive: bool | None = None, width: int = 480) -> Any:
    """Viewer of ``prediction`` over ``frames`` uint8 (L, H, W, 3).

    ``interactive``: True builds the widget, False the static figure, None (default) decides by
    :func:`frontend_attached`. Returns an ``ipywidgets.VBox`` (frame slider with play button, view
    buttons, one checkbox per instance, the image) or a :class:`~matplotlib.figure.Figure`; show
    either by making it the last expression of a cell.
    """
    if not (frontend_attached() if interactive is None else interactive):
        return static_views(frames, prediction)
    import ipywidgets as w

    last = len(frames) - 1
    slider = w.IntSlider(value=0, min=0, max=last, description="frame", continuous_update=True)
    play = w.Play(value=0, min=0, max=last, interval=100)
    w.jslink((play, "value"), (slider, "value"))
    views = [v for v in VIEWS if v == "instances" or prediction.tags is not None]
    view = w.ToggleButtons(options=views, value="instances")
    boxes = [w.Checkbox(value=True, description=name, indent=False, layout=w.Layout(width="auto"))
             for name in instance_names(prediction, class_names)]
    image = w.Image(format="png", width=width)

    def update(*_: Any) -> None:
        image.value = _png(render_view(frames, prediction, slider.value, view.value, [b.value for b in boxes]))

    for control in (slider, view, *boxes):
        control.observe(update, names="value")
    update()
    return w.VBox([w.HBox([play, slider, view]), w.HBox(boxes), image])
