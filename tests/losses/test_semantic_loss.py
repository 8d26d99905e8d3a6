"""semantic_cross_entropy: mean over labelled pixels, zero (and differentiable) when all are ignored."""
import math

import pytest
import torch

from tagvis_lib.losses import semantic_cross_entropy

VOID = 255


def loop_cross_entropy(logits: torch.Tensor, semantic: torch.Tensor) -> float:
    """-log softmax of the true class, averaged over labelled pixels, one pixel at a time."""
    b, c, t, h, w = logits.shape
    total, count = 0.0, 0
    for i in range(b):
        for f in range(t):
            for y in range(h):
                for x in range(w):
                    label = int(semantic[i, f, y, x])
                    if label == VOID:
                        continue
                    scores = [float(logits[i, k, f, y, x]) for k in range(c)]
                    top = max(scores)
                    log_z = top + math.log(sum(math.exp(s - top) for s in scores))
                    total += log_z - scores[label]
                    count += 1
    return total / count


def test_matches_the_pixel_loop_and_skips_ignored_pixels():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 3, 4, 5, generator=g, dtype=torch.float64)
    semantic = torch.randint(0, 4, (2, 3, 4, 5), generator=g)
    semantic[torch.rand(2, 3, 4, 5, generator=g) < 0.3] = VOID
    got = semantic_cross_entropy(logits, semantic)
    assert got.item() == pytest.approx(loop_cross_entropy(logits, semantic), rel=1e-10)
    # Changing the logits of ignored pixels changes nothing.
    logits2 = logits.clone()
    logits2[:, 0][semantic == VOID] += 100.0
    assert semantic_cross_entropy(logits2, semantic).item() == pytest.approx(got.item(), rel=1e-12)


def test_all_ignored_gives_zero_with_a_graph():
    logits = torch.randn(1, 3, 2, 3, 3, requires_grad=True)
    loss = semantic_cross_entropy(logits, torch.full((1, 2, 3, 3), VOID))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_half_precision_logits_are_computed_in_float32():
    logits = torch.randn(1, 3, 2, 3, 3)
    semantic = torch.randint(0, 3, (1, 2, 3, 3))
    loss = semantic_cross_entropy(logits.to(torch.bfloat16), semantic)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(semantic_cross_entropy(logits, semantic).item(), rel=2e-2)


def test_wrong_shapes_raise():
    with pytest.raises(ValueError, match="semantic"):
        semantic_cross_entropy(torch.randn(1, 3, 2, 3, 3), torch.zeros(1, 3, 3, dtype=torch.long))


def test_background_weight_is_a_weighted_mean_over_labelled_pixels():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 2, 4, 4, dtype=torch.float64)
    semantic = torch.randint(0, 3, (1, 2, 4, 4))
    semantic[0, 0, 0] = VOID
    per_pixel = torch.nn.functional.cross_entropy(logits, semantic, ignore_index=VOID, reduction="none")
    labelled = semantic != VOID
    w = torch.where(semantic == 0, 0.25, 1.0) * labelled
    want = (per_pixel * w).sum() / w.sum()
    got = semantic_cross_entropy(logits, semantic, background_weight=0.25)
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert got.item() != pytest.approx(semantic_cross_entropy(logits, semantic).item(), rel=1e-6)
    # weight 1 is the plain mean
    assert semantic_cross_entropy(logits, semantic, background_weight=1.0).item() == pytest.approx(
        per_pixel[labelled].mean().item(), rel=1e-12)
