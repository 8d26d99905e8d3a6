"""Figures of the notebooks draw what they are given."""
import numpy as np

from tagvis_lib import TABLE3_ABLATIONS
from tagvis_lib.data.clips import ClipIndices
from tagvis_lib.notebook.figures import (clip_timeline_figure, loss_curves_figure, presence_figure, table3_figure,
                                tag_maps_figure, tagging_terms_figure)
from tagvis_lib.notebook.reporting import table3_rows


def test_clip_timeline_has_a_row_per_clip_and_one_for_inference():
    clip = ClipIndices(np.array([0, 1, 4, 5]), np.ones(4, bool), [(2, 2)])
    padded = ClipIndices(np.array([0, 1, 2, 2]), np.array([1, 1, 1, 0], bool), [])
    fig = clip_timeline_figure(8, [clip, padded], (np.array([0, 2, 5, 7]), np.ones(4, bool)), labels=["a", "b"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["inference clip", "b", "a"]
    assert len(ax.patches) == 1  # the one dropped run


def test_loss_curves_one_panel_per_term():
    rows = [{"step": s, "spectra": 1.0 / s, "specter": 0.0, "tempra": 0.1, "temper": None, "ce": 2.0, "total": 3.0}
            for s in (1, 2, 3)]
    fig = loss_curves_figure(rows)
    assert [a.get_title() for a in fig.axes] == ["L_spectra", "L_specter", "L_tempra", "L_temper", "ce", "total"]
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), [1.0, 0.5, 1 / 3])


def test_table3_chart_has_paper_and_measured_bars():
    measured = [{"row": "Ours", "seed": 0, "metrics": {"J&F-Mean": 0.5, "J-Mean": 0.4, "F-Mean": 0.6}}]
    fig = table3_figure(table3_rows(measured))
    bars = fig.axes[0].patches
    assert len(bars) == 2 * len(TABLE3_ABLATIONS)
    assert sorted(b.get_width() for b in bars)[-1] == 74.3  # the paper's full model
    assert any(abs(b.get_width() - 50.0) < 1e-9 for b in bars)
    three = [{"row": "Ours", "seed": k, "metrics": {"J&F-Mean": v, "J-Mean": v, "F-Mean": v}} for k, v in enumerate((0.4, 0.5, 0.6))]
    fig = table3_figure(table3_rows(three))
    (bar,) = fig.axes[0].containers[-1].lines[2][0].get_segments()  # the error bar of "Ours"
    assert bar[0][0] < 50.0 < bar[1][0]


def test_other_figures_draw():
    sweep = {"values": np.array([0.0, 1.0]), **{t: np.array([1.0, 0.0]) for t in ("spectra", "specter", "tempra", "temper")}}
    assert len(tagging_terms_figure({"offset": sweep, "spread": sweep}, margin=3.0).axes) == 2
    assert len(presence_figure(np.array([[1, 0, 1], [0, 1, 1]], bool), ["a", "b"]).axes[0].collections) == 2
    assert len(tag_maps_figure(np.zeros((3, 4, 5))).axes) == 4  # three maps and the colour bar


def test_tag_distances_are_the_full_euclidean_ones():
    from tagvis_lib.notebook.figures import tag_distance_figure

    tags = np.array([[0.0, 0.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])  # 1-D projection hides #3
    fig = tag_distance_figure(tags, margin=3.0, names=["a", "b", "c"])
    image = fig.axes[0].images[0].get_array()
    assert image[0, 1] == 5.0 and image[0, 2] == 1.0 and abs(image[1, 2] - np.sqrt(26.0)) < 1e-12
    assert "1 of 3 pairs closer than G" in fig.axes[0].get_title()
