"""The encoder has torchvision's r2plus1d_18 layout and loads a Kinetics-format checkpoint strictly."""
import json
from pathlib import Path

import pytest
import torch

from tagvis_lib.errors import CheckpointError
from tagvis_lib.model.encoder import R2Plus1DEncoder, load_encoder_weights

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "r2plus1d_18_state_dict_shapes.json"


@pytest.fixture(scope="module")
def kinetics_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's r2plus1d_18 state dict (torchvision 0.29.1, fc included)."""
    return {k: tuple(v) for k, v in json.loads(FIXTURE.read_text()).items()}


@pytest.fixture(scope="module")
def full_encoder() -> R2Plus1DEncoder:
    return R2Plus1DEncoder(width=1.0)


@pytest.fixture(scope="module")
def kinetics_file(tmp_path_factory, kinetics_shapes) -> tuple[Path, dict[str, torch.Tensor]]:
    """A random state dict with exactly the Kinetics checkpoint's keys and shapes, saved to disk."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in kinetics_shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        else:
            state[key] = torch.randn(shape, generator=gen)
    path = tmp_path_factory.mktemp("kinetics") / "r2plus1d_18_kinetics.pth"
    torch.save(state, path)
    return path, state


def test_fixture_is_the_published_layout(kinetics_shapes):
    assert len(kinetics_shapes) == 224
    assert sum(torch.Size(s).numel() for s in kinetics_shapes.values()) == 31_530_712


def test_width_one_has_torchvision_keys_and_shapes(full_encoder, kinetics_shapes):
    ours = {k: tuple(v.shape) for k, v in full_encoder.state_dict().items()}
    expected = {k: s for k, s in kinetics_shapes.items() if not k.startswith("fc.")}
    assert list(ours) == list(expected)  # same keys in the same order
    assert ours == expected
    assert set(kinetics_shapes) - set(expected) == {"fc.weight", "fc.bias"}


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model"])
def test_kinetics_checkpoint_loads_strictly(tmp_path, full_encoder, kinetics_file, wrapper):
    path, state = kinetics_file
    if wrapper is not None:
        wrapped = tmp_path / "wrapped.pth"
        torch.save({wrapper: state, "epoch": 45}, wrapped)
        path = wrapped
    load_encoder_weights(full_encoder, path)
    loaded = full_encoder.state_dict()
    for key in ("stem.0.weight", "layer2.0.conv1.0.3.weight", "layer4.1.conv2.1.running_var"):
        assert torch.equal(loaded[key], state[key])


def test_checkpoint_without_fc_loads_too(tmp_path, full_encoder, kinetics_file):
    _, state = kinetics_file
    path = tmp_path / "no_fc.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    load_encoder_weights(full_encoder, path)


def test_narrow_encoder_refuses_the_kinetics_checkpoint(kinetics_file):
    path, _ = kinetics_file
    with pytest.raises(CheckpointError) as err:
        load_encoder_weights(R2Plus1DEncoder(width=0.25), path)
    msg = str(err.value)
    assert str(path) in msg and "stem.0.weight" in msg
    assert "(45, 3, 1, 7, 7)" in msg and "(11, 3, 1, 7, 7)" in msg


def test_mismatching_and_missing_keys_are_named(tmp_path):
    encoder = R2Plus1DEncoder(width=0.125)
    state = dict(encoder.state_dict())
    state["layer3.1.conv2.0.3.weight"] = torch.zeros(1, 2, 3, 1, 1)
    bad_shape = tmp_path / "bad_shape.pth"
    torch.save(state, bad_shape)
    with pytest.raises(CheckpointError, match=r"layer3\.1\.conv2\.0\.3\.weight.*\(1, 2, 3, 1, 1\)"):
        load_encoder_weights(encoder, bad_shape)
    del state["layer3.1.conv2.0.3.weight"]
    missing = tmp_path / "missing.pth"
    torch.save(state, missing)
    with pytest.raises(CheckpointError, match=r"layer3\.1\.conv2\.0\.3\.weight: missing"):
        load_encoder_weights(encoder, missing)


def test_missing_and_unreadable_files(tmp_path):
    encoder = R2Plus1DEncoder(width=0.125)
    with pytest.raises(CheckpointError, match="not found"):
        load_encoder_weights(encoder, tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth"):
        load_encoder_weights(encoder, garbage)


@pytest.mark.parametrize("t,h,w", [(8, 32, 48), (5, 33, 47), (1, 40, 24)])
def test_multiscale_feature_shapes(t, h, w):
    encoder = R2Plus1DEncoder(width=0.125).eval()
    with torch.no_grad():
        feats = encoder(torch.randn(2, 3, t, h, w))

    def half(n: int, k: int) -> int:  # k successive ceil halvings
        for _ in range(k):
            n = -(-n // 2)
        return n

    c1, c2, c3, c4 = encoder.channels[1:]
    assert feats.stem.shape == (2, c1, t, half(h, 1), half(w, 1))
    assert feats.layer1.shape == (2, c1, t, half(h, 1), half(w, 1))
    assert feats.layer2.shape == (2, c2, half(t, 1), half(h, 2), half(w, 2))
    assert feats.layer3.shape == (2, c3, half(t, 2), half(h, 3), half(w, 3))
    assert feats.layer4.shape == (2, c4, half(t, 3), half(h, 4), half(w, 4))


def test_same_features_as_torchvision(tmp_path):
    tv_video = pytest.importorskip("torchvision.models.video")
    reference = tv_video.r2plus1d_18(weights=None).eval()
    path = tmp_path / "tv.pth"
    torch.save(reference.state_dict(), path)
    encoder = R2Plus1DEncoder(width=1.0).eval()
    load_encoder_weights(encoder, path)
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        expected = reference.layer4(reference.layer3(reference.layer2(reference.layer1(reference.stem(x)))))
        assert torch.allclose(encoder(x).layer4, expected, atol=1e-5)


def test_group_norm_encoder_replaces_every_batchnorm_and_gives_per_clip_outputs():
    """encoder_norm="group": no BatchNorm left, and a clip's features do not depend on its batch mates."""
    from torch import nn

    from tagvis_lib.model.norm import GroupNorm

    torch.manual_seed(0)
    enc = R2Plus1DEncoder(width=0.125, norm="group").train()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in enc.modules())
    assert sum(isinstance(m, GroupNorm) for m in enc.modules()) == sum(
        isinstance(m, nn.BatchNorm3d) for m in R2Plus1DEncoder(width=0.125).modules())
    clip, other = torch.randn(1, 3, 8, 32, 48), torch.randn(1, 3, 8, 32, 48) * 3 + 1
    alone = enc(clip).layer4
    together = enc(torch.cat([clip, other])).layer4[:1]
    torch.testing.assert_close(alone, together, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(enc.eval()(clip).layer4, alone, rtol=1e-4, atol=1e-5)


def test_group_norm_encoder_refuses_kinetics_weights_and_unknown_norms(tmp_path):
    from tagvis_lib.config import ModelConfig
    from tagvis_lib.model import build_model

    with pytest.raises(ValueError, match="model.encoder_norm"):
        build_model(ModelConfig(num_classes=2, encoder_width=0.125, embed_dim=16, encoder_norm="layer"))
    with pytest.raises(ValueError, match="encoder_norm='batch'"):
        build_model(ModelConfig(num_classes=2, encoder_norm="group", encoder_weights=str(tmp_path / "k.pth")))


def _batchnorm_input_gradients(encoder, x):
    """Strides of the input gradient of every BatchNorm in the backward of ``encoder(x).layer4.sum()``."""
    strides = []
    out = encoder(x).layer4
    seen, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == "NativeBatchNormBackward0":
            node.register_hook(lambda grad_in, grad_out: strides.append(grad_in[0].stride()))
        stack.extend(n for n, _ in node.next_functions)
    out.sum().backward()
    return strides


def test_two_frame_clips_keep_channels_last_gradients_through_the_one_frame_layers(monkeypatch):
    # layers 2-4 see one frame; torch's BatchNorm there once returned contiguous gradients, and the
    # layers below then ran on mixed layouts (several times slower on the CPU)
    from tagvis_lib.model import precision

    torch.manual_seed(0)
    encoder = R2Plus1DEncoder(0.25).to(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 3, 2, 32, 48).contiguous(memory_format=torch.channels_last_3d)
    strides = _batchnorm_input_gradients(encoder, x)
    assert len(strides) >= 11 and all(s[1] == 1 for s in strides)
    monkeypatch.setattr(precision, "one_frame_channels_last", lambda t: False)  # the check sees the old layout
    assert any(s[1] != 1 for s in _batchnorm_input_gradients(encoder, x))
