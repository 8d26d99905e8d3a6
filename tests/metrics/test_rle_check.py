"""rle_string_totals reads COCO compressed RLE strings as pycocotools does."""
import numpy as np
import pycocotools.mask as mask_utils

from tagvis_lib.metrics.rle_check import rle_string_totals


def test_totals_match_the_mask_size_for_strings_pycocotools_wrote():
    rng = np.random.default_rng(0)
    strings, sizes = [], []
    for i in range(300):
        h, w = rng.integers(1, 70, 2)
        mask = rng.random((h, w)) < rng.random()
        if i % 3 == 0:  # long runs: multi-character values and negative differences
            mask = np.zeros((h, w), bool)
            mask[h // 4: h // 2 + 1, 1: w // 2 + 1] = True
        strings.append(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"])
        sizes.append(h * w)
    totals, ok = rle_string_totals(strings + [s.decode() for s in strings] + [""])
    assert ok.all() and (totals == np.array(sizes * 2 + [0])).all()


def test_malformed_strings_are_flagged():
    good = mask_utils.encode(np.asfortranarray(np.eye(8, dtype=np.uint8)))["counts"].decode()
    totals, ok = rle_string_totals(["garbage!!", good[:-1] + "o", good + "1", good])
    assert ok.tolist() == [False, False, True, True]
    assert totals[2] != 64 and totals[3] == 64


def test_batches_give_the_same_answer(monkeypatch):
    import tagvis_lib.metrics.rle_check as rle_check

    rng = np.random.default_rng(1)
    strings = [mask_utils.encode(np.asfortranarray((rng.random((9, 7)) < 0.5).astype(np.uint8)))["counts"]
               for _ in range(50)] + [b"garbage!!", b""]
    whole = rle_check.rle_string_totals(strings)
    monkeypatch.setattr(rle_check, "_CHUNK_CHARS", 16)
    batched = rle_check.rle_string_totals(strings)
    assert (whole[0] == batched[0]).all() and (whole[1] == batched[1]).all()
    assert batched[1].tolist() == [True] * 50 + [False, True] and (batched[0][:50] == 63).all()
