"""What each attention module attends to: frames, encoder time steps, and the location embedding's start."""
import math

import pytest
import torch

from tagvis_lib.model.attention import (LocationEmbedding, SelfAttention, SpatioTemporalAttention, TagAttention,
                                        from_tokens, to_tokens)

B, C, H, W = 2, 8, 3, 4


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_self_attention_never_mixes_frames():
    module = SelfAttention(C, heads=2).eval()
    x = torch.randn(B, C, 5, H, W)
    y = x.clone()
    y[:, :, 2] += 3 * torch.randn(B, C, H, W)  # perturb frame 2 only
    with torch.no_grad():
        a, b = module(x), module(y)
    others = [0, 1, 3, 4]
    torch.testing.assert_close(a[:, :, others], b[:, :, others], rtol=0, atol=1e-6)
    assert (a[:, :, 2] - b[:, :, 2]).abs().max() > 0.1


def test_tag_attention_does_mix_frames():
    """The contrast: tag-based attention lets frame t see every frame."""
    module = TagAttention(C, heads=2).eval()
    x = torch.randn(B, C, 5, H, W)
    y = x.clone()
    y[:, :, 2] += 3 * torch.randn(B, C, H, W)
    with torch.no_grad():
        assert (module(x)[:, :, 0] - module(y)[:, :, 0]).abs().max() > 1e-3


def _reference_st(module: SpatioTemporalAttention, f: torch.Tensor, num_frames: int, joint: bool) -> torch.Tensor:
    """u_t by hand: per-step softmax over the N tokens of each encoder step, averaged over steps
    (``joint``: one softmax over all T'*N tokens instead, which the module must NOT compute)."""
    f_up = torch.nn.functional.interpolate(f, size=(num_frames, H, W), mode="trilinear", align_corners=False)
    heads = module.heads
    q = module.to_q(module.norm(to_tokens(f_up)))  # (B, T, N, C)
    k, v = module.to_kv(module.norm(to_tokens(f))).chunk(2, dim=-1)  # (B, T', N, C)
    d = C // heads
    split = lambda z: z.unflatten(-1, (heads, d)).movedim(-2, 1)  # (B, heads, ..., N, d)
    q, k, v = split(q), split(k), split(v)  # q (B, h, T, N, d); k, v (B, h, T', N, d)
    logits = torch.einsum("bhtnd,bhsmd->bhtsnm", q, k) / math.sqrt(d)  # (B, h, T, T', N, M)
    if joint:
        steps, m = logits.shape[3], logits.shape[5]
        weights = logits.movedim(3, 4).flatten(-2).softmax(-1).unflatten(-1, (steps, m)).movedim(4, 3)
        attended = torch.einsum("bhtsnm,bhsmd->bhtnd", weights, v)
    else:
        attended = torch.einsum("bhtsnm,bhsmd->bhtnd", logits.softmax(-1), v) / logits.shape[3]
    out = module.proj(attended.movedim(1, -2).flatten(-2))  # (B, T, N, C)
    return f_up + from_tokens(out, H, W)


def test_spatiotemporal_softmax_is_taken_per_encoder_time_step():
    module = SpatioTemporalAttention(C, heads=2).eval()
    f = torch.randn(B, C, 3, H, W) * 2
    with torch.no_grad():
        got = module(f, num_frames=8)
        per_step = _reference_st(module, f, 8, joint=False)
        joint = _reference_st(module, f, 8, joint=True)
    assert got.shape == (B, C, 8, H, W)
    torch.testing.assert_close(got, per_step, rtol=1e-5, atol=1e-5)
    assert (got - joint).abs().max() > 1e-3  # the other reading is distinguishable


def test_location_embedding_starts_as_the_identity_on_the_features():
    module = LocationEmbedding(C)
    f, g = torch.randn(B, C, 2, H, W), torch.randn(B, C, 2, H, W)
    with torch.no_grad():
        offset = module(torch.zeros_like(f))  # what the coordinates add, the same for every input
        torch.testing.assert_close(module(f), f + offset, rtol=0, atol=1e-6)
        torch.testing.assert_close(module(g), g + offset, rtol=0, atol=1e-6)
        assert offset.abs().max() > 0  # the coordinates do reach the output
        torch.testing.assert_close(offset[:, :, 0], offset[:, :, 1])  # and do not depend on time


@pytest.mark.parametrize("limit", [0, 1 << 30])
def test_attention_paths_agree(monkeypatch, limit):
    """The explicit matrix products (small score matrices on the CPU) and the fused kernel give the
    same attention, gradients included; ``limit`` 0 forces the fused kernel, a large one the products."""
    import tagvis_lib.model.attention as attention_module

    q, k, v = (torch.randn(2, 3, n, 4, dtype=torch.float64, requires_grad=True) for n in (5, 7, 7))
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    grads = torch.autograd.grad(reference.square().sum(), (q, k, v))
    monkeypatch.setattr(attention_module, "EXPLICIT_SCORES_MAX", limit)
    out = attention_module.attention(q, k, v)
    torch.testing.assert_close(out, reference)
    for got, want in zip(torch.autograd.grad(out.square().sum(), (q, k, v)), grads):
        torch.testing.assert_close(got, want)
