"""TaggingLoss against a plain-loop transcription of eqs. (1)-(5), and its known values."""
import pytest
import torch

from loss_reference import VOID, loop_batch, loop_terms, pairs
from tagvis_lib.losses import TaggingLoss, sample_per_segment

TERMS = ("spectra", "specter", "tempra", "temper")


def random_case(seed: int, d: int, b: int = 2, t: int = 4, h: int = 5, w: int = 6, dtype=torch.float64):
    """Random tags and ids with void pixels, non-contiguous ids and instances absent from frames."""
    g = torch.Generator().manual_seed(seed)
    tags = (torch.randn(b, d, t, h, w, generator=g, dtype=dtype) * 2).requires_grad_()
    ids = torch.randint(0, 5, (b, t, h, w), generator=g)
    ids[ids == 4] = 6  # ids 1, 2, 3, 6: not contiguous
    ids[torch.rand(b, t, h, w, generator=g) < 0.1] = VOID
    ids[0, :2][ids[0, :2] == 2] = 0  # instance 2 absent from frames 0 and 1 of clip 0
    ids[0, 3] = 0  # clip 0, frame 3: no instance at all
    ids[1][ids[1] == 3] = 0  # clip 1 has no instance 3
    return tags, ids


def assert_terms_close(got: dict, want: dict, tol: float = 1e-5):
    for k in TERMS:
        assert torch.isfinite(got[k]), k
        assert got[k].item() == pytest.approx(want[k].item(), rel=tol, abs=tol), k


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_terms_and_gradients_equal_the_loop_transcription(d, seed):
    tags, ids = random_case(seed, d)
    got = TaggingLoss(margin=3.0)(tags, ids)
    ref_tags = tags.detach().clone().requires_grad_()
    want = loop_batch(ref_tags, ids, margin=3.0)
    assert_terms_close(got, want)
    assert want["specter"] > 0 and want["temper"] > 0 and want["spectra"] > 0  # nothing trivially zero
    sum(got.values()).backward()
    sum(want.values()).backward()
    torch.testing.assert_close(tags.grad, ref_tags.grad, rtol=1e-5, atol=1e-7)


def test_float32_tags_match_to_1e5():
    tags, ids = random_case(3, 2, dtype=torch.float32)
    assert_terms_close(TaggingLoss(margin=2.0)(tags, ids), loop_batch(tags.double(), ids, margin=2.0))


@pytest.mark.parametrize("d", [1, 3])
def test_mean_reduction_equals_the_loop_transcription(d):
    tags, ids = random_case(5, d)
    got = TaggingLoss(spectra_reduction="mean")(tags, ids)
    want = loop_batch(tags, ids, margin=3.0, reduction="mean")
    assert_terms_close(got, want)
    summed = TaggingLoss(spectra_reduction="sum")(tags, ids)["spectra"]
    assert got["spectra"] < summed  # the mean divides by the pixel counts (> 1 here)


def test_uint8_ids_and_wrong_shapes():
    tags, ids = random_case(0, 1)
    loss = TaggingLoss()
    assert_terms_close(loss(tags, ids.to(torch.uint8)), loss(tags, ids), tol=1e-12)
    with pytest.raises(ValueError, match="instance_ids"):
        loss(tags, ids[:, :2])
    with pytest.raises(ValueError, match="integer"):
        loss(tags, ids.float())


def blocks(t: int, n: int, h: int = 4, w_per: int = 3) -> torch.Tensor:
    """ids (1, t, h, n * w_per): instance k+1 fills columns [k*w_per, (k+1)*w_per) in every frame."""
    cols = torch.arange(n * w_per) // w_per + 1
    return cols.expand(1, t, h, n * w_per).clone()


@pytest.mark.parametrize("d", [1, 3])
def test_well_separated_constant_tags_give_zero_loss(d):
    n, t, margin = 4, 3, 3.0
    ids = blocks(t, n)
    tags = torch.zeros(1, d, *ids.shape[1:])
    for k in range(n):
        tags[:, :, ids[0] == k + 1] = 3.5 * k  # |difference| >= 3.5 > G on every channel
    out = TaggingLoss(margin=margin)(tags, ids)
    assert all(out[k].item() == 0.0 for k in TERMS)


@pytest.mark.parametrize("d", [1, 3])
def test_identical_tags_give_pairs_times_margin_and_finite_gradients(d):
    n, t, margin = 4, 5, 2.5
    ids = blocks(t, n)
    ids[0, 1][ids[0, 1] == 2] = 0  # frame 1: 3 instances
    ids[0, 2][ids[0, 2] >= 2] = VOID  # frame 2: 1 instance
    ids[0, 4] = 0  # frame 4: none
    tags = torch.full((1, d, *ids.shape[1:]), 0.5, requires_grad=True)  # exact means: zero distances
    out = TaggingLoss(margin=margin)(tags, ids)
    assert out["specter"].item() == pytest.approx(pairs(n) * margin)
    present = [4, 3, 1, 4, 0]
    assert out["temper"].item() == pytest.approx(sum(pairs(p) for p in present) * margin)
    assert out["spectra"].item() == 0.0 and out["tempra"].item() == 0.0
    sum(out.values()).backward()
    assert torch.isfinite(tags.grad).all()


@pytest.mark.parametrize("kind", ["background", "void", "one_instance"])
def test_clips_with_zero_or_one_instance_are_finite_and_zero(kind):
    tags = torch.randn(2, 2, 3, 4, 5, requires_grad=True)
    ids = torch.zeros(2, 3, 4, 5, dtype=torch.long)
    if kind == "void":
        ids[:] = VOID
    if kind == "one_instance":
        ids[:, 0, :2] = 7  # one instance, only in frame 0
    out = TaggingLoss()(tags, ids)
    for k in TERMS:
        assert torch.isfinite(out[k])
    assert out["specter"].item() == 0.0 and out["temper"].item() == 0.0
    if kind == "one_instance":
        assert out["spectra"].item() > 0  # pull terms are still computed
        assert out["tempra"].item() == pytest.approx(0.0, abs=1e-6)  # a single frame: h_nt = h_n
    else:
        assert all(out[k].item() == 0.0 for k in TERMS)
    sum(out.values()).backward()
    assert tags.grad is not None and torch.isfinite(tags.grad).all()


def test_batch_loss_is_the_mean_of_clip_losses():
    tags, ids = random_case(7, 2, b=3)
    ids[2] = 0  # an empty clip counts with zero loss
    loss = TaggingLoss()
    whole = loss(tags, ids)
    single = [loss(tags[i : i + 1], ids[i : i + 1]) for i in range(3)]
    for k in TERMS:
        assert whole[k].item() == pytest.approx(sum(s[k].item() for s in single) / 3, rel=1e-10)
    per_clip = loss.clip_losses(tags, ids)
    assert per_clip["specter"].shape == (3,) and per_clip["specter"][2].item() == 0.0


def plus_minus_case(seed: int):
    """Instance pixels alternate c_n + 1 and c_n - 1 with equal counts: h_n = c_n and every pixel's
    squared deviation is 1, so sum_m ||h_n - h'_nm||^2 counts the sampled pixels."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 4, (2, 4, 6, 8), generator=g)
    tags = torch.zeros(2, 1, 4, 6, 8, dtype=torch.float64)
    counts = []
    for b in range(2):
        for n in range(1, 4):
            where = (ids[b] == n).nonzero()
            if len(where) % 2:
                ids[b][tuple(where[-1])] = 0
                where = where[:-1]
            sign = torch.tensor([1.0, -1.0]).repeat(len(where) // 2).double()
            tags[b, 0][tuple(where.T)] = 10.0 * n + sign
            counts.append(len(where))
    return tags, ids, counts


def test_sampling_takes_min_of_m_and_size_pixels_per_instance():
    tags, ids, counts = plus_minus_case(0)
    for m in (1, 5, 1000):
        out = TaggingLoss(pixels_per_instance=m, seed=3)(tags, ids)
        want = (sum(min(m, c) for c in counts[:3]) / 3 + sum(min(m, c) for c in counts[3:]) / 3) / 2
        assert out["spectra"].item() == pytest.approx(want)
        mean = TaggingLoss(pixels_per_instance=m, spectra_reduction="mean")(tags, ids)["spectra"]
        assert mean.item() == pytest.approx(1.0)


def test_sampling_is_seeded_and_no_sampling_is_deterministic():
    tags, ids = random_case(2, 3)
    a, b, c = (TaggingLoss(pixels_per_instance=4, seed=s) for s in (11, 11, 12))
    first, again, other = a(tags, ids)["spectra"], b(tags, ids)["spectra"], c(tags, ids)["spectra"]
    assert first.item() == again.item()
    assert first.item() != other.item()
    assert a(tags, ids)["spectra"].item() != first.item()  # the generator advances
    # The sampler state travels in the state dict.
    b.load_state_dict(a.state_dict())
    assert a(tags, ids)["spectra"].item() == b(tags, ids)["spectra"].item()
    full = [TaggingLoss(seed=s)(tags, ids)["spectra"].item() for s in (0, 1)]
    assert full[0] == full[1]
    assert TaggingLoss(pixels_per_instance=10_000)(tags, ids)["spectra"].item() == pytest.approx(full[0])


@pytest.mark.parametrize("k", [1, 30, 200])
def test_sample_per_segment_picks_distinct_members_of_each_segment(k):
    g = torch.Generator().manual_seed(0)
    segment = torch.randint(0, 6, (600,), generator=g)
    segment[segment == 4] = 5  # segment 4 empty
    sizes = torch.bincount(segment, minlength=7)
    chosen = sample_per_segment(segment, sizes, k, g)
    assert len(set(chosen.tolist())) == len(chosen)  # distinct
    assert torch.equal(torch.bincount(segment[chosen], minlength=7), sizes.clamp(max=k))
    hits = torch.zeros(600, dtype=torch.float64)
    for _ in range(200):  # every member of a segment is chosen about equally often
        hits[sample_per_segment(segment, sizes, k, g)] += 1
    seg0 = hits[segment == 0] / 200
    share = min(k / sizes[0].item(), 1.0)
    assert abs(seg0.mean().item() - share) < 1e-9
    assert (seg0 - share).abs().max() < 0.2  # over 5 standard deviations of 200 draws


def test_temper_max_pairs_keeps_a_seeded_subset_of_pairs():
    n, t, margin = 5, 3, 1.0
    ids = blocks(t, n)
    tags = torch.zeros(1, 1, *ids.shape[1:])
    assert TaggingLoss(margin=margin)(tags, ids)["temper"].item() == pytest.approx(pairs(n) * t * margin)
    for p in (1, 4, pairs(n), 100):
        out = TaggingLoss(margin=margin, temper_max_pairs=p)(tags, ids)
        assert out["temper"].item() == pytest.approx(min(p, pairs(n)) * t * margin)
        assert out["specter"].item() == pytest.approx(pairs(n) * margin)  # eq. (3) keeps every pair
    # Distinct pair hinges: the kept pair depends on the seed, and is reproducible.
    for k in range(n):
        tags[:, :, ids[0] == k + 1] = 0.1 * k**2
    values = [TaggingLoss(margin=margin, temper_max_pairs=1, seed=s)(tags, ids)["temper"].item() for s in range(8)]
    again = [TaggingLoss(margin=margin, temper_max_pairs=1, seed=s)(tags, ids)["temper"].item() for s in range(8)]
    assert values == again and len(set(values)) > 1


def test_temper_pairs_only_from_pairs_sharing_a_frame():
    ids = blocks(4, 3)
    ids[0, :2][ids[0, :2] == 3] = 0  # instance 3 only in frames 2, 3
    ids[0, 2:][ids[0, 2:] == 1] = 0  # instance 1 only in frames 0, 1: pair (1, 3) never meets
    tags = torch.zeros(1, 1, *ids.shape[1:])
    out = TaggingLoss(margin=1.0, temper_max_pairs=2, seed=0)(tags, ids)
    assert out["temper"].item() == pytest.approx(4.0)  # pairs (1,2) and (2,3), two frames each


def test_bad_options_raise():
    for kwargs in ({"margin": -1}, {"pixels_per_instance": 0}, {"spectra_reduction": "max"},
                   {"temper_max_pairs": 0}):
        with pytest.raises(ValueError):
            TaggingLoss(**kwargs)


def test_reference_itself_on_a_hand_computed_clip():
    """Two instances in two frames, D = 1, values checked by hand."""
    ids = torch.tensor([[[1, 1, 2]], [[1, 0, 2]]])  # (T=2, H=1, W=3)
    tags = torch.tensor([[[[0.0, 2.0, 5.0]], [[1.0, 9.0, 5.5]]]], dtype=torch.float64)  # (D=1, T, H, W)
    ref = loop_terms(tags, ids, margin=3.0)
    # h_1 = 1, h_2 = 5.25; h_11 = 1, h_12 = 1; h_21 = 5, h_22 = 5.5
    assert ref["spectra"].item() == pytest.approx((1 + 1 + 0 + 0.0625 * 2) / 2)
    assert ref["specter"].item() == 0.0
    assert ref["tempra"].item() == pytest.approx((0 + 0 + 0.0625 * 2) / 2)
    assert ref["temper"].item() == 0.0
    got = TaggingLoss()(tags[None], ids[None])
    assert_terms_close(got, ref, tol=1e-12)


def test_runs_under_deterministic_algorithms_and_bfloat16_tags():
    tags, ids = random_case(4, 2, dtype=torch.float32)
    want = TaggingLoss(pixels_per_instance=3)(tags, ids)
    torch.use_deterministic_algorithms(True)
    try:
        got = TaggingLoss(pixels_per_instance=3)(tags, ids)
        sum(got.values()).backward()
    finally:
        torch.use_deterministic_algorithms(False)
    assert all(got[k].item() == want[k].item() for k in TERMS)
    low = TaggingLoss()(tags.detach().to(torch.bfloat16), ids)
    assert all(low[k].dtype == torch.float32 and torch.isfinite(low[k]) for k in TERMS)
