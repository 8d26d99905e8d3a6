"""The clip viewer: views, instance toggles, and the static fallback when headless."""
import numpy as np
import pytest

from tagvis_lib.inference import TagSummary, VideoPrediction
from tagvis_lib.notebook.widgets import VIEWS, clip_viewer, frontend_attached, instance_names, live_output, render_view


@pytest.fixture()
def video():
    """Six grey frames of 8x10 with two predicted instances (tags 0 and 3) in the left and right halves."""
    frames = np.full((6, 8, 10, 3), 100, np.uint8)
    labels = np.zeros((6, 8, 10), np.uint8)
    labels[:, :, :4], labels[:, :, 6:] = 1, 2
    tag_map = np.where(np.arange(5) < 2, 0.0, 3.0)[None, None, :].repeat(4, 1).repeat(3, 0).astype(np.float16)
    fg = np.zeros((3, 4, 5), bool)
    fg[:, :, :2] = fg[:, :, 3:] = True
    summary = TagSummary(np.array([0, 2, 5]), tag_map, fg, fg.astype(np.uint8) * 2, np.zeros(1), np.ones(1))
    prediction = VideoPrediction(labels, np.array([[0.0], [3.0]], np.float32), np.array([1, 0]), np.array([2, 1]),
                                 np.array([0.9, 0.4], np.float32), tags=summary)
    return frames, prediction


def test_instances_view_colours_only_the_visible_instances(video):
    frames, prediction = video
    both = render_view(frames, prediction, 3, "instances")
    assert (both[:, :4] != 100).any() and (both[:, 6:] != 100).any() and (both[:, 4:6] == 100).all()
    left_only = render_view(frames, prediction, 3, "instances", visible=[True, False])
    assert (left_only[:, 6:] == 100).all() and (left_only[:, :4] == both[:, :4]).all()
    assert (render_view(frames, prediction, 3, "instances", visible=[False, False]) == 100).all()


def test_tag_view_gives_distant_tags_distant_colours(video):
    frames, prediction = video
    image = render_view(frames, prediction, 4, "tags").astype(int)
    assert np.abs(image[4, 1] - image[4, 8]).sum() > 100  # tag 0 versus tag 3, interior pixels
    assert (image[4, 4:6] == 35).all()  # background: the frame dimmed
    semantic = render_view(frames, prediction, 4, "semantic")
    assert (semantic[4, 1] != 100).any() and (semantic[4, 5] == 100).all()
    with pytest.raises(ValueError):
        render_view(frames, prediction, 0, "depth")


def test_viewer_is_static_when_headless_and_a_widget_on_request(video):
    frames, prediction = video
    assert not frontend_attached() and live_output()  # no kernel here: a terminal shows progress bars
    fig = clip_viewer(frames, prediction, ["cat", "dog"])
    assert len(fig.axes) == len(VIEWS) * 4
    widget = clip_viewer(frames, prediction, ["cat", "dog"], interactive=True)
    controls, toggles, image = widget.children
    assert [b.description for b in toggles.children] == instance_names(prediction, ["cat", "dog"]) == ["1: cat 0.40", "2: dog 0.90"]
    before = image.value
    toggles.children[0].value = False
    assert image.value != before
    controls.children[1].value = 5  # frame slider
    controls.children[2].value = "tags"
    assert image.value[:4] == b"\x89PNG"


def test_an_interactive_frontend_is_told_from_a_headless_execution(monkeypatch):
    """JupyterLab's execute requests allow stdin, nbclient's (papermill) do not."""
    import types

    import IPython

    kernel = types.SimpleNamespace(_allow_stdin=False)
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=kernel))
    assert not frontend_attached() and not live_output()  # papermill: static images, no progress bars
    kernel._allow_stdin = True
    assert frontend_attached() and live_output()  # JupyterLab: the widget, progress bars
