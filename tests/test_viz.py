"""Figures and overlays of tagvis_lib.notebook.figures: colours by tag, overlays, figures, mp4 and GIF files."""
import av
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from tagvis_lib.notebook import figures as viz


def moving_square(length: int = 6, height: int = 30, width: int = 41) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((length, height, width), dtype=np.uint8)
    for t in range(length):
        labels[t, 5:15, 3 + 3 * t:13 + 3 * t] = 1
        labels[t, 18:26, 20:30] = 2
    frames = np.full((length, height, width, 3), 90, dtype=np.uint8)
    return frames, labels


def test_instance_colors_follow_tags():
    colors = viz.instance_colors(np.array([[0.0], [3.0], [0.0], [6.0]]))
    assert colors.shape == (4, 3) and colors.dtype == np.uint8
    assert np.array_equal(colors[0], colors[2]) and not np.array_equal(colors[0], colors[1])
    # D > 1: tags along one line keep their order and spacing like scalar tags
    direction = np.array([1.0, 2.0, -2.0]) / 3
    along = viz.instance_colors(np.array([0.0, 3.0, 0.0, 6.0])[:, None] * direction)
    assert np.array_equal(along, colors)
    assert viz.instance_colors(np.zeros((0, 2))).shape == (0, 3)


def test_overlay_masks_touches_only_instance_pixels():
    frames, labels = moving_square()
    colors = np.array([[255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    out = viz.overlay_masks(frames, labels, colors, alpha=0.5, outline=False)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[labels == 0], frames[labels == 0])
    assert np.array_equal(out[labels == 1][0], [172, 45, 45])
    edged = viz.overlay_masks(frames, labels, colors)
    assert np.array_equal(edged[0, 5, 3], colors[0])  # border pixel drawn opaque
    assert np.array_equal(edged[0, 10, 8], out[0, 10, 8])  # interior blended


def test_figures():
    frames, labels = moving_square()
    tag_map = np.where(labels == 1, 0.0, np.where(labels == 2, 3.0, -1.0)).astype(np.float16)
    fig = viz.tag_histogram_figure(np.arange(6), tag_map, labels > 0, instance_tags=np.array([0.0, 3.0]), bins=16)
    assert isinstance(fig, Figure)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (16, 6)  # bins x frames
    assert (np.asarray(image).sum(0) > 0).all()
    fig = viz.semantic_figure(frames[:3], labels[:3, ::2, ::2], ["square", "box"], titles=["a", "b", "c"])
    assert len(fig.axes) == 3 and fig.legends
    assert len(viz.overlay_figure(frames[:2], labels[:2], viz.instance_colors(np.array([0.0, 3.0]))).axes) == 2


@pytest.mark.parametrize("size", [(30, 41), (32, 48)])
def test_write_mp4_decodes(tmp_path, size):
    frames, labels = moving_square(height=size[0], width=size[1])
    frames = viz.overlay_masks(frames, labels, np.array([[255, 0, 0], [0, 255, 0]]))
    path = tmp_path / "a.mp4"
    viz.write_mp4(path, frames, fps=5)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "mpeg4")
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == len(frames)
    assert decoded[0].shape[:2] == (size[0] + size[0] % 2, size[1] + size[1] % 2)
    assert np.abs(decoded[2][: size[0], : size[1]].astype(int) - frames[2]).mean() < 8
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]


def test_write_gif(tmp_path):
    frames, _ = moving_square()
    frames[np.arange(6), 0, 0] = np.arange(6)[:, None] * 40  # every frame differs
    viz.write_gif(tmp_path / "a.gif", frames, fps=4, max_width=20)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (20, 15)
        assert gif.info["duration"] == 250 and gif.info["loop"] == 0
