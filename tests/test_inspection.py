"""Views of the model and the loss (notebook 02): module table, Table III parameters, toy tagging terms."""
import numpy as np
import pytest

from tagvis_lib import TABLE3_ABLATIONS, build_model, profile_config
from tagvis_lib.notebook.inspection import ablation_parameters, module_table, tagging_term_sweep, toy_tag_clip


@pytest.fixture(scope="module")
def cfg():
    return profile_config("smoke")


def test_module_table_runs_in_forward_order_and_counts_every_parameter(cfg):
    model = build_model(cfg)
    rows = module_table(model, (2, 3, 5, 32, 48))
    by = {r["Module"]: r for r in rows}
    total = sum(p.numel() for p in model.parameters())
    assert rows[-1] == {"Module": "total", "Output shape": "", "Parameters": total}
    assert sum(r["Parameters"] for r in rows[:-1]) == total  # the rows cover the whole network
    names = [r["Module"] for r in rows]
    assert names.index("encoder.stem") < names.index("encoder.layer4") < names.index("bottleneck") < names.index("decoder")
    assert by["tag_generator"]["Output shape"].startswith(f"(2, {cfg.model.tag_dim}, 5, 32, 48)")
    assert by["decoder"]["Output shape"] == f"(2, {cfg.model.num_classes + 1}, 5, 32, 48)"
    assert model.training  # restored


def test_ablation_parameters_name_the_removed_modules(cfg):
    rows = {r["w/o"]: r for r in ablation_parameters(cfg)}
    assert list(rows) == list(TABLE3_ABLATIONS)
    full = rows["Ours"]["Parameters"]
    assert rows["L_tempra"]["Parameters"] == full and rows["L_tempra"]["Removed modules"] == "-"
    assert rows["Spatio-Temporal Attention"]["Removed modules"] == "st_attention"
    assert rows["Spatio-Temporal Attention"]["Parameters"] < full
    tags_only = rows["Tag-Based Attention + Self-Attention + Decoder + Connector"]
    assert "decoder" in tags_only["Removed modules"] and tags_only["Parameters"] < rows["Tag-Based Attention"]["Parameters"]


def test_toy_clip_has_the_statistics_it_promises():
    tags, ids = toy_tag_clip(offset=2.0, spread=0.5, drift=0.3, frames=5)
    assert tags.shape == (1, 1, 5, 8, 12) and ids.shape == (1, 5, 8, 12)
    for n, base in ((1, 0.0), (2, 2.0)):
        values = tags[0, 0][ids[0] == n].reshape(5, -1)
        frame_means = values.mean(1).numpy()
        assert frame_means == pytest.approx(base + 0.3 * (np.arange(5) - 2), abs=1e-5)
        assert values.std(1, unbiased=False).numpy() == pytest.approx(np.full(5, 0.5), abs=1e-5)


@pytest.mark.parametrize("offset", [0.0, 1.0, 2.5, 3.0, 4.0])
def test_push_terms_on_toy_tags_equal_the_hinge(offset):
    out = tagging_term_sweep("offset", [offset], drift=0.0, margin=3.0)
    assert out["specter"][0] == pytest.approx(max(0.0, 3.0 - offset), abs=1e-5)
    assert out["temper"][0] == pytest.approx(4 * max(0.0, 3.0 - offset), abs=1e-4)  # 4 frames, one pair


def test_pull_terms_on_toy_tags_equal_their_closed_form():
    spread, drift, frames, pixels_per_frame = 0.4, 0.25, 4, 8 * 4
    times = np.arange(frames) - (frames - 1) / 2
    out = tagging_term_sweep("spread", [spread], drift=drift)
    # eq. 4: (1/N) sum_n sum_t (h_n - h_nt)^2, both instances drift alike
    assert out["tempra"][0] == pytest.approx(drift ** 2 * np.sum(times ** 2), rel=1e-4)
    # eq. 2 over every pixel: drift and spread add (the noise has mean 0 in every frame)
    expected = pixels_per_frame * (drift ** 2 * np.sum(times ** 2) + frames * spread ** 2)
    assert out["spectra"][0] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError):
        tagging_term_sweep("margin", [1.0])
