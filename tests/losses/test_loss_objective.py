"""TagVISObjective: weighted sum of the five terms, weight-0 terms reported, non-finite terms raise."""
from typing import NamedTuple

import pytest
import torch

from tagvis_lib import TABLE3_ABLATIONS, LossConfig, apply_overrides, profile_config
from tagvis_lib.losses import TaggingLoss, TagVISObjective, semantic_cross_entropy
from tagvis_lib.losses.objective import tagging_scale

NAMES = ("spectra", "specter", "tempra", "temper", "ce")


class Output(NamedTuple):
    tags: torch.Tensor
    logits: torch.Tensor


def make_case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tags = torch.randn(2, 2, 3, 6, 7, generator=g, requires_grad=True)
    logits = torch.randn(2, 4, 3, 6, 7, generator=g, requires_grad=True)
    ids = torch.randint(0, 4, (2, 3, 6, 7), generator=g)
    semantic = torch.where(ids > 0, ids % 3 + 1, torch.zeros_like(ids))
    ids[:, :, 0] = 255
    semantic[:, :, 0] = 255
    return Output(tags, logits), {"instance_ids": ids, "semantic": semantic, "video_id": ["a", "b"]}


def test_default_total_is_eq6_plus_eq7():
    output, batch = make_case()
    out = TagVISObjective(LossConfig())(output, batch)
    tagging = TaggingLoss()(output.tags, batch["instance_ids"])
    ce = semantic_cross_entropy(output.logits, batch["semantic"])
    for k in NAMES[:4]:
        assert out[k].item() == pytest.approx(tagging[k].item())
    assert out["ce"].item() == pytest.approx(ce.item())
    assert out["total"].item() == pytest.approx(sum(tagging.values()).item() + ce.item())
    out["total"].backward()
    assert output.tags.grad.abs().sum() > 0 and output.logits.grad.abs().sum() > 0


def test_plain_tuple_output_is_accepted():
    output, batch = make_case()
    a = TagVISObjective(LossConfig())(output, batch)["total"]
    b = TagVISObjective(LossConfig())((output[0], output[1]), batch)["total"]
    assert a.item() == b.item()


def test_weights_and_zero_weight_terms_are_reported_but_not_added():
    output, batch = make_case(1)
    cfg = LossConfig(specter_weight=0.0, ce_weight=2.5, tempra_weight=0.5)
    out = TagVISObjective(cfg)(output, batch)
    assert out["specter"].item() > 0 and not out["specter"].requires_grad
    want = out["spectra"] + 0.5 * out["tempra"] + out["temper"] + 2.5 * out["ce"]
    assert out["total"].item() == pytest.approx(want.item())


@pytest.mark.parametrize("row", ["L_spectra", "L_specter", "L_tempra", "L_temper"])
def test_table3_loss_rows_drop_exactly_their_term(row):
    output, batch = make_case(2)
    cfg = apply_overrides(profile_config("paper"), TABLE3_ABLATIONS[row]).loss
    out = TagVISObjective(cfg)(output, batch)
    term = row[2:]
    assert not out[term].requires_grad
    rest = sum(out[k] for k in NAMES if k != term)
    assert out["total"].item() == pytest.approx(rest.item())


def test_tagging_scale_is_zero_before_the_start_then_ramps_to_one():
    assert [tagging_scale(s, LossConfig()) for s in (0, 5)] == [1.0, 1.0]
    cfg = LossConfig(tagging_start_step=3, tagging_ramp_steps=4)
    assert [tagging_scale(s, cfg) for s in range(9)] == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1]
    assert [tagging_scale(s, LossConfig(tagging_start_step=2)) for s in range(4)] == [0, 0, 1, 1]


def test_tag_scale_multiplies_the_tagging_terms_and_keeps_their_graph():
    output, batch = make_case(3)
    objective = TagVISObjective(LossConfig(ce_weight=2.0))
    full, half = objective(output, batch), objective(output, batch, tag_scale=0.5)
    tagging = sum(full[k] for k in NAMES[:4])
    assert half["total"].item() == pytest.approx((0.5 * tagging + 2.0 * full["ce"]).item())
    off = objective(output, batch, tag_scale=0.0)
    assert off["total"].item() == pytest.approx(2.0 * full["ce"].item())
    assert off["spectra"].item() == pytest.approx(full["spectra"].item())  # still reported
    off["total"].backward()
    assert output.tags.grad is not None and output.tags.grad.abs().sum() == 0  # in the graph, factor 0
    assert output.logits.grad.abs().sum() > 0


@pytest.mark.parametrize("field", ["tagging_start_step", "tagging_ramp_steps"])
def test_a_negative_tagging_schedule_is_refused_naming_the_field(field):
    with pytest.raises(ValueError, match=f"loss.{field}"):
        TagVISObjective(LossConfig(**{field: -1}))


def test_config_options_reach_the_tagging_loss():
    cfg = LossConfig(margin=1.5, pixels_per_instance=8, spectra_reduction="mean", temper_max_pairs=3)
    loss = TagVISObjective(cfg, seed=4).tagging
    assert (loss.margin, loss.pixels_per_instance, loss.spectra_reduction, loss.temper_max_pairs) == (
        1.5, 8, "mean", 3)
    output, batch = make_case()
    a = TagVISObjective(cfg, seed=4)(output, batch)["spectra"].item()
    assert a == TagVISObjective(cfg, seed=4)(output, batch)["spectra"].item()


def test_non_finite_terms_raise_naming_the_term():
    output, batch = make_case()
    bad_logits = output.logits.detach().clone()
    bad_logits[0, 1, 1, 3, 3] = float("nan")
    with pytest.raises(FloatingPointError, match="'ce'"):
        TagVISObjective(LossConfig())(Output(output.tags, bad_logits), batch)
    bad_tags = output.tags.detach().clone()
    bad_tags.permute(0, 2, 3, 4, 1)[batch["instance_ids"] == 1] = float("inf")  # instance 1, all channels
    with pytest.raises(FloatingPointError, match="'spectra'"):
        TagVISObjective(LossConfig())(Output(bad_tags, output.logits), batch)


def test_all_zero_or_negative_weights_raise():
    zero = {f"{k}_weight": 0.0 for k in NAMES}
    with pytest.raises(ValueError):
        TagVISObjective(LossConfig(**zero))
    with pytest.raises(ValueError):
        TagVISObjective(LossConfig(ce_weight=-1.0))


def test_background_weight_reaches_the_cross_entropy_and_must_be_positive():
    output, batch = make_case()
    out = TagVISObjective(LossConfig(background_weight=0.25))(output, batch)
    want = semantic_cross_entropy(output.logits, batch["semantic"], background_weight=0.25)
    assert out["ce"].item() == pytest.approx(want.item())
    assert out["ce"].item() != pytest.approx(TagVISObjective(LossConfig())(output, batch)["ce"].item())
    with pytest.raises(ValueError, match="loss.background_weight"):
        TagVISObjective(LossConfig(background_weight=0.0))


@pytest.mark.parametrize("cfg", [
    LossConfig(pixels_per_instance=5, spectra_reduction="mean", background_weight=0.25, spectra_weight=10.0),
    LossConfig(pixels_per_instance=3, temper_max_pairs=1),
    LossConfig(),
])
def test_clip_mean_equals_each_clip_scored_alone(cfg):
    """What training computes in one pass equals the mean of the clips' objectives one by one, each
    with its own seeded sampling; gradients too (a clip whose pixels are all ignored counts as 0)."""
    output, batch = make_case(5)
    batch["instance_ids"][1] = 255
    batch["semantic"][1] = 255  # clip 1: every pixel ignored
    seeds = [11, 12]
    objective = TagVISObjective(cfg, seed=3)
    state = objective.tagging.generator.get_state()
    batched = objective.clip_mean(output, batch, seeds, tag_scale=0.5)
    assert torch.equal(objective.tagging.generator.get_state(), state)  # the module's generator untouched
    grads = torch.autograd.grad(batched["total"], (output.tags, output.logits))
    alone = []
    for b, seed in enumerate(seeds):
        objective.tagging.generator.manual_seed(seed)
        part = {k: v[b:b + 1] for k, v in batch.items() if k != "video_id"}
        alone.append(objective((output.tags[b:b + 1], output.logits[b:b + 1]), part, tag_scale=0.5))
    for name in (*NAMES, "total"):
        assert batched[name].item() == pytest.approx(sum(a[name].item() for a in alone) / 2, rel=1e-6, abs=1e-7)
    want = torch.autograd.grad(sum(a["total"] for a in alone) / 2, (output.tags, output.logits))
    for got, expected in zip(grads, want):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_clip_mean_needs_one_seed_per_clip():
    output, batch = make_case()
    with pytest.raises(ValueError, match="one per clip"):
        TagVISObjective(LossConfig(pixels_per_instance=4)).clip_mean(output, batch, [1])
