"""Each Table III switch removes exactly the modules it names; gradients reach every enabled module."""
import pytest
import torch
from model_helpers import small_model_config

from tagvis_lib.ablations import TABLE3_ABLATIONS
from tagvis_lib.config import ExperimentConfig, apply_overrides
from tagvis_lib.model import build_model

#: ModelConfig switch -> the top-level modules of TagVIS it removes. The self-attention connector
#: is an identity link (no parameters); switching it off cuts the bottleneck -> decoder path.
REMOVES = {
    "location_embedding": {"location_embedding"},
    "spatiotemporal_attention": {"st_attention"},
    "tag_attention": {"tag_attention"},
    "tag_attention_connector": {"tag_connector"},
    "self_attention": {"self_attention"},
    "self_attention_connector": set(),
    "semantic_decoder": {"decoder"},
}
SWITCHABLE = set().union(*REMOVES.values()) | {"tags_only_classifier"}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def row_config(row: str, encoder_skips: bool = False):
    base = ExperimentConfig(model=small_model_config(encoder_skips=encoder_skips))
    return apply_overrides(base, TABLE3_ABLATIONS[row]).model


def removed_modules(row: str) -> set[str]:
    switches = [k.split(".", 1)[1] for k in TABLE3_ABLATIONS[row] if k.startswith("model.")]
    return set().union(*(REMOVES[s] for s in switches)) if switches else set()


@pytest.fixture(scope="module")
def full_model():
    torch.manual_seed(0)
    return build_model(small_model_config())


@pytest.mark.parametrize("row", list(TABLE3_ABLATIONS))
def test_switch_removes_exactly_the_named_modules(row, full_model):
    model = build_model(row_config(row))
    removed = removed_modules(row)
    present = {name for name in SWITCHABLE if getattr(model, name) is not None}
    full_present = {name for name in SWITCHABLE if getattr(full_model, name) is not None}
    tags_only = row_config(row).semantic_decoder is False
    assert present == (full_present - removed) | ({"tags_only_classifier"} if tags_only else set())
    # Every module that stays has exactly the parameters it has in the full model.
    for name, child in full_model.named_children():
        if name not in removed:
            assert count(getattr(model, name)) == count(child), name
    # The difference in parameters is exactly the removed modules (minus the tags-only head).
    expected = count(full_model) - sum(count(getattr(full_model, n)) for n in removed)
    expected += count(model.tags_only_classifier)
    assert count(model) == expected
    assert (count(model) < count(full_model)) == bool(removed)


def test_tags_only_classifier_is_one_1x1x1_conv():
    model = build_model(row_config("Tag-Based Attention + Self-Attention + Decoder + Connector"))
    head = model.tags_only_classifier
    assert isinstance(head, torch.nn.Conv3d) and head.kernel_size == (1, 1, 1)
    assert head.out_channels == model.num_classes + 1


@pytest.mark.parametrize("encoder_skips", [False, True])
@pytest.mark.parametrize("row", list(TABLE3_ABLATIONS))
def test_gradients_reach_every_parameter_of_enabled_modules(row, encoder_skips):
    model = build_model(row_config(row, encoder_skips))
    out = model(torch.randn(2, 3, 6, 32, 40))
    gen = torch.Generator().manual_seed(1)
    loss = (out.tags * torch.randn(out.tags.shape, generator=gen)).sum()
    loss = loss + (out.logits * torch.randn(out.logits.shape, generator=gen)).sum()
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    # Parameters of disabled modules do not exist at all.
    names = {n.split(".", 1)[0] for n, _ in model.named_parameters()}
    assert not names & removed_modules(row)


#: Row -> the module outputs whose sum is the decoder's input (the connectors that remain).
DECODER_INPUTS = {
    "Ours": ("self_attention", "tag_attention"),
    "Tag-Based Attention": ("self_attention", "tag_connector"),
    "Self-Attention": ("bottleneck", "tag_attention"),
    "Tag-Based Attention + Connector": ("self_attention",),
    "Self-Attention + Connector": ("tag_attention",),
}


@pytest.mark.parametrize("row", list(DECODER_INPUTS))
def test_connectors_wire_the_decoder_input(row):
    model = build_model(row_config(row)).eval()
    captured = {}
    for name in ("bottleneck", "self_attention", "tag_connector", "tag_attention"):
        if getattr(model, name) is not None:
            getattr(model, name).register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o))
    model.decoder.register_forward_pre_hook(lambda m, args: captured.__setitem__("decoder", args[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 4, 32, 32))
    expected = sum(captured[name] for name in DECODER_INPUTS[row])
    assert torch.allclose(captured["decoder"], expected)


@pytest.mark.parametrize("encoder_skips", [False, True])
@pytest.mark.parametrize("row", [r for r in TABLE3_ABLATIONS if "Decoder" not in r])
def test_no_signal_reaches_the_decoder_through_a_cut_path(row, encoder_skips):
    """With the bottleneck and tag-connector outputs detached, the only path left from the frames to
    the logits is the decoder's encoder skips: the frames get a gradient exactly when the row keeps them."""
    cfg = row_config(row, encoder_skips)
    model = build_model(cfg)
    for name in ("bottleneck", "tag_connector"):
        if getattr(model, name) is not None:
            getattr(model, name).register_forward_hook(lambda m, i, o: o.detach())
    frames = torch.randn(1, 3, 4, 32, 32, requires_grad=True)
    model(frames).logits.square().sum().backward()
    reached = frames.grad is not None and frames.grad.abs().sum() > 0
    cut = "Connector" in row
    assert reached == (encoder_skips and not cut)
    assert (model.decoder.path.lateral is None) == (not encoder_skips or cut)
    assert (model.tag_generator.path.lateral is None) == (not encoder_skips)
