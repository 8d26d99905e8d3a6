"""TagVIS: output shapes for any T, H, W, tag activation, config validation, one training step."""
import pytest
import torch
import torch.nn.functional as F
from model_helpers import small_model_config

from tagvis_lib.config import ExperimentConfig, profile_config
from tagvis_lib.model import TagVIS, TagVISOutput, build_model
from tagvis_lib.model.network import appearance_maps, coordinate_maps


@pytest.mark.parametrize("tags_only", [False, True])
@pytest.mark.parametrize(
    "b,t,h,w",
    [(1, 8, 32, 48), (2, 5, 33, 47), (1, 13, 17, 31), (3, 1, 40, 24), (1, 16, 20, 20)],
)
def test_full_resolution_output_for_any_size(b, t, h, w, tags_only):
    switches = {}
    if tags_only:
        switches = dict(
            tag_attention=False, tag_attention_connector=False, self_attention=False,
            self_attention_connector=False, semantic_decoder=False,
        )
    cfg = small_model_config(tag_dim=2, num_classes=4, **switches)
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(b, 3, t, h, w))
    assert isinstance(out, TagVISOutput)
    assert out.tags.shape == (b, 2, t, h, w)
    assert out.logits.shape == (b, 5, t, h, w)
    assert torch.isfinite(out.tags).all() and torch.isfinite(out.logits).all()


def test_every_frame_gets_its_own_output(small_cfg):
    """Changing only the last frame changes the last frame's outputs: no frame is a copy of another."""
    model = build_model(small_cfg).eval()
    x = torch.randn(1, 3, 9, 32, 32)
    y = x.clone()
    y[:, :, -1] = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x), model(y)
    assert not torch.allclose(a.tags[:, :, -1], b.tags[:, :, -1])
    assert not torch.allclose(a.logits[:, :, -1], b.logits[:, :, -1])
    assert not torch.allclose(a.tags[:, :, -1], a.tags[:, :, -2])


def test_sigmoid_tags_are_bounded():
    model = build_model(small_model_config(tag_activation="sigmoid")).eval()
    with torch.no_grad():
        tags = model(torch.randn(1, 3, 4, 32, 32) * 5).tags
    assert tags.min() > 0 and tags.max() < 1


def test_build_model_accepts_an_experiment_config():
    model = build_model(ExperimentConfig(model=small_model_config(num_classes=7)))
    assert isinstance(model, TagVIS) and model.num_classes == 7


def test_profiles_build():
    for name in ("smoke", "cpu"):
        model = build_model(profile_config(name).model)
        assert model.cfg.encoder_width == profile_config(name).model.encoder_width


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(tag_attention_connector=False), "tag_attention_connector"),
        (dict(self_attention_connector=False), "self_attention_connector"),
        (dict(semantic_decoder=False), "connectors"),
        (
            dict(tag_attention=False, self_attention=False, tag_attention_connector=False, self_attention_connector=False),
            "at least one connector",
        ),
        (dict(embed_dim=18, attention_heads=4), "divisible"),
        (dict(tag_activation="tanh"), "tag_activation"),
        (dict(tag_trunk_gradient=1.5), "model.tag_trunk_gradient"),
        (dict(tag_trunk_gradient=-0.1), "model.tag_trunk_gradient"),
        (dict(tag_connector_gradient=2.0), "model.tag_connector_gradient"),
        (dict(tag_coordinates=-1.0), "model.tag_coordinates"),
    ],
)
def test_inconsistent_switches_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        build_model(small_model_config(**changes))


def output_gradients(output: str, **changes: float) -> tuple[TagVISOutput, dict[str, torch.Tensor]]:
    """Output and the parameter gradients of ``output.square().sum()`` (``"tags"`` or ``"logits"``
    alone) for the small model with ``changes``."""
    torch.manual_seed(0)
    model = build_model(small_model_config(**changes)).eval()
    out = model(torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1)))
    getattr(out, output).square().sum().backward()
    return out, {n: p.grad for n, p in model.named_parameters()}


def test_tag_trunk_gradient_scales_only_what_the_tags_send_into_the_trunk():
    full, g1 = output_gradients("tags", tag_trunk_gradient=1.0)
    half, g05 = output_gradients("tags", tag_trunk_gradient=0.5)
    cut, g0 = output_gradients("tags", tag_trunk_gradient=0.0)
    assert torch.equal(full.tags, half.tags) and torch.equal(full.tags, cut.tags)  # forward unchanged
    assert torch.equal(full.logits, cut.logits)
    trunk = [n for n in g1 if n.startswith(("encoder.", "bottleneck."))]
    head = [n for n in g1 if n.startswith("tag_generator.")]
    assert trunk and head and any(g1[n].abs().sum() > 0 for n in trunk)
    for n in head:
        torch.testing.assert_close(g0[n], g1[n])
        torch.testing.assert_close(g05[n], g1[n])
    for n in trunk:
        assert g0[n] is None or not g0[n].any()
        torch.testing.assert_close(g05[n], 0.5 * g1[n], rtol=1e-4, atol=1e-7)


def test_tag_connector_gradient_scales_only_what_the_decoder_sends_into_the_tags():
    full, g1 = output_gradients("logits", tag_connector_gradient=1.0)
    half, g05 = output_gradients("logits", tag_connector_gradient=0.5)
    cut, g0 = output_gradients("logits", tag_connector_gradient=0.0)
    assert torch.equal(full.tags, cut.tags) and torch.equal(full.logits, half.logits)  # forward unchanged
    tags = [n for n in g1 if n.startswith("tag_generator.head")]
    decoder = [n for n in g1 if n.startswith(("decoder.", "tag_connector."))]
    assert tags and decoder and all(g1[n].abs().sum() > 0 for n in tags)
    for n in decoder:
        torch.testing.assert_close(g0[n], g1[n])
    for n in tags:
        assert g0[n] is None or not g0[n].any()
        torch.testing.assert_close(g05[n], 0.5 * g1[n], rtol=1e-4, atol=1e-7)


def test_coordinate_maps_share_one_unit_per_grid_height():
    maps = coordinate_maps((4, 6), 8.0, torch.zeros(1, dtype=torch.bfloat16))
    assert maps.shape == (1, 2, 1, 4, 6) and maps.dtype == torch.bfloat16
    maps = coordinate_maps((4, 6), 8.0, torch.zeros(1))
    torch.testing.assert_close(maps[0, 0, 0, :, 3], torch.tensor([1.0, 3.0, 5.0, 7.0]))  # 8 units over 4 rows
    torch.testing.assert_close(maps[0, 1, 0, 2], torch.arange(6) * 2.0 + 1.0)  # columns in the rows' unit
    assert torch.equal(maps[0, 0, 0, :, 0], maps[0, 0, 0, :, 5]) and torch.equal(maps[0, 1, 0, 0], maps[0, 1, 0, 3])


def zero_initialised_extension(word: str, **changes) -> tuple[TagVIS, torch.Tensor, TagVISOutput]:
    """The small paper network's weights in the network with the extension ``changes`` (whose new
    parameters, named with ``word``, start at zero), an input (1, 3, 4, 32, 48) and the paper
    network's output on it; checks that the extension adds only those parameters and starts equal to
    the paper network."""
    torch.manual_seed(0)
    plain = build_model(small_model_config()).eval()
    extended = build_model(small_model_config(**changes)).eval()
    missing, unexpected = extended.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(word in k for k in missing)
    assert len(getattr(extended.tag_generator.path, word)) == 3 and getattr(plain.tag_generator, f"head_{word}") is None
    x = torch.randn(1, 3, 4, 32, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before, start = plain(x), extended(x)
    assert torch.equal(before.tags, start.tags) and torch.equal(before.logits, start.logits)  # zero-initialised
    return extended, x, before


def test_tag_coordinates_start_as_the_paper_network_and_then_place_the_tags():
    placed, x, before = zero_initialised_extension("coordinates", tag_coordinates=8.0)
    # the head's coordinate map then moves the tags by the position
    with torch.no_grad():
        placed.tag_generator.head_coordinates.weight.zero_()
        placed.tag_generator.head_coordinates.weight[0, 1] = 1.0  # tag channel 0 += column
        moved = placed(x).tags
    shift = moved[0, 0, 0] - before.tags[0, 0, 0]  # (H, W) at the input resolution
    steps = shift[:, 1:] - shift[:, :-1]
    torch.testing.assert_close(steps[:, 8:-8], torch.full_like(steps[:, 8:-8], 8.0 / 32), atol=1e-4, rtol=0)
    torch.testing.assert_close(moved[0, 1:], before.tags[0, 1:])  # other channels unchanged
    out = placed(x)
    out.tags.square().sum().backward()
    assert all(m.weight.grad.abs().sum() > 0 for m in placed.tag_generator.path.coordinates)
    assert placed.decoder.path.coordinates is None  # only the tag generator sees the position


def test_appearance_maps_average_each_cell_of_every_frame():
    frames = torch.arange(2 * 3 * 2 * 4 * 6, dtype=torch.float32).view(2, 3, 2, 4, 6)
    maps = appearance_maps(frames, (2, 3), torch.zeros(1, dtype=torch.bfloat16))
    assert maps.shape == (2, 3, 2, 2, 3) and maps.dtype == torch.bfloat16 and not maps.requires_grad
    cell = frames[1, 2, 1, 2:4, 4:6].mean()  # clip 1, colour 2, frame 1, cell (1, 2)
    assert maps[1, 2, 1, 1, 2].item() == pytest.approx(cell.item(), rel=1e-2)
    same = appearance_maps(frames, (4, 6), torch.zeros(1))
    assert torch.equal(same, frames)  # the input grid itself: the frames unchanged
    cl = frames.contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(appearance_maps(cl, (2, 3), torch.zeros(1)), appearance_maps(frames, (2, 3), torch.zeros(1)))


def test_tag_appearance_starts_as_the_paper_network_and_then_follows_the_colours():
    seeing, x, before = zero_initialised_extension("appearance", tag_appearance=True)
    # the head's map then adds the red channel, averaged over 2 x 2 cells and resized back
    with torch.no_grad():
        seeing.tag_generator.head_appearance.weight[0, 0] = 1.0  # tag channel 0 += red
        moved = seeing(x).tags
    red = F.interpolate(F.avg_pool2d(x[0, 0], 2).unsqueeze(0), size=(32, 48), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(moved[0, 0] - before.tags[0, 0], red, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(moved[0, 1:], before.tags[0, 1:])  # other channels unchanged
    out = seeing(x)
    out.tags.square().sum().backward()
    assert all(m.weight.grad.abs().sum() > 0 for m in seeing.tag_generator.path.appearance)
    assert seeing.decoder.path.appearance is None  # only the tag generator sees the colours


def test_wrong_input_layout_is_refused(small_cfg):
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        build_model(small_cfg)(torch.randn(1, 8, 3, 32, 32))


def test_one_adam_step_lowers_the_cross_entropy(small_cfg):
    model = build_model(small_cfg)
    frames = torch.randn(2, 3, 8, 32, 32)
    # Semantic target: class 1 in the left half, class 2 in a moving square, background elsewhere.
    target = torch.zeros(2, 8, 32, 32, dtype=torch.long)
    target[..., :16] = 1
    for t in range(8):
        target[:, t, 8:16, 2 * t : 2 * t + 8] = 2
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        return F.cross_entropy(model(frames).logits, target)

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after < before - 1e-3
