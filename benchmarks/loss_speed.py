"""Speed of the vectorised TaggingLoss against loop transcriptions of eqs. (1)-(5), forward + backward.

Case (issue 3): N = 10 instances, T = 32 frames, M' = 256 sampled pixels per instance, tags
(1, D, 32, 96, 160). Instances are moving rectangles, some absent from some frames. Baselines:

- "loop transcription": Python loops over instances, frames, instance pairs and the M' sampled pixels
  of eq. (2), as the equations read; the means of eq. (1) and h_nt are masked tensor means (a Python
  loop over every pixel of the clip would make this baseline far slower still).
- "per-instance loop": the same loops over instances, frames and pairs, with the pixel sum of eq. (2)
  vectorised per instance (what a careful non-vectorised implementation does).

Before timing, the loop transcription is checked against TaggingLoss at this size with every pixel
used (pixels_per_instance=None). Usage: ``python benchmarks/loss_speed.py [--device cuda] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import time

import torch

from tagvis_lib.losses import TaggingLoss

TERMS = ("spectra", "specter", "tempra", "temper")


def make_case(d: int, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """tags (1, d, 32, 96, 160) and ids (1, 32, 96, 160) with 10 moving rectangles and some void."""
    g = torch.Generator().manual_seed(seed)
    t_size, h, w, n = 32, 96, 160, 10
    ids = torch.zeros(1, t_size, h, w, dtype=torch.long)
    for k in range(n):
        y0, x0 = int(torch.randint(0, h - 24, (1,), generator=g)), int(torch.randint(0, w - 30, (1,), generator=g))
        first, last = (0, t_size) if k < 6 else (4 * (k - 5), t_size - 3 * (k - 5))  # 4 partly absent
        for t in range(first, last):
            y, x = (y0 + t // 4) % (h - 24), (x0 + t // 2) % (w - 30)
            ids[0, t, y : y + 20 + k % 4, x : x + 24 + k % 5] = k + 1
    ids[0, :, :2] = 255  # a void band
    tags = (torch.randn(1, d, t_size, h, w, generator=g) + ids.unsqueeze(1) * 0.5).to(device)
    return tags.requires_grad_(), ids.to(device)


def _norm(v: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((v * v).sum())


def loop_loss(tags: torch.Tensor, ids: torch.Tensor, margin: float, m: int | None, g: torch.Generator,
              vectorise_pixels: bool) -> dict[str, torch.Tensor]:
    """Eqs. (1)-(5) for one clip with loops over instances, frames, pairs (and sampled pixels)."""
    tags, ids = tags[0], ids[0]
    t_size = ids.shape[0]
    instances = [int(v) for v in torch.unique(ids).tolist() if v not in (0, 255)]
    h, h_t, pix = {}, {}, {}
    for n in instances:
        mask = ids == n
        pix[n] = tags[:, mask]  # (D, M)
        h[n] = pix[n].mean(1)  # eq. (1)
        for t in range(t_size):
            if mask[t].any():
                h_t[(n, t)] = tags[:, t][:, mask[t]].mean(1)
    zero = tags.sum() * 0
    spectra = zero
    for n in instances:  # eq. (2)
        count = pix[n].shape[1]
        chosen = torch.arange(count) if m is None else torch.randperm(count, generator=g)[:m]
        if vectorise_pixels:
            spectra = spectra + ((pix[n][:, chosen.to(tags.device)] - h[n][:, None]) ** 2).sum()
        else:
            for i in chosen.tolist():
                spectra = spectra + ((h[n] - pix[n][:, i]) ** 2).sum()
    spectra = spectra / max(len(instances), 1)
    specter, tempra, temper = zero, zero, zero
    for a, n in enumerate(instances):
        for n2 in instances[a + 1 :]:  # eq. (3)
            specter = specter + torch.clamp(margin - _norm(h[n] - h[n2]), min=0)
        for t in range(t_size):  # eq. (4)
            if (n, t) in h_t:
                tempra = tempra + ((h[n] - h_t[(n, t)]) ** 2).sum()
    tempra = tempra / max(len(instances), 1)
    for a, n in enumerate(instances):  # eq. (5)
        for n2 in instances[a + 1 :]:
            for t in range(t_size):
                if (n, t) in h_t and (n2, t) in h_t:
                    temper = temper + torch.clamp(margin - _norm(h_t[(n, t)] - h_t[(n2, t)]), min=0)
    return {"spectra": spectra, "specter": specter, "tempra": tempra, "temper": temper}


def run_once(fn, tags: torch.Tensor) -> float:
    """Seconds of one forward + backward of the sum of the four terms."""
    tags.grad = None
    if tags.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    sum(fn(tags).values()).backward()
    if tags.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def best_times(fns: list, tags: torch.Tensor, repeats: int) -> list[float]:
    """Best of ``repeats`` runs of each function, after one warm-up run each.

    The runs are interleaved (one of each per round) so that other processes on the machine slow
    every implementation alike, and the minimum (as ``timeit`` advises) is the least disturbed figure.
    """
    for fn in fns:
        run_once(fn, tags)
    rounds = [[run_once(fn, tags) for fn in fns] for _ in range(repeats)]
    return [min(column) for column in zip(*rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    margin, m = 3.0, 256
    print(f"device {args.device}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    print(f"N = 10, T = 32, M' = {m}, tags (1, D, 32, 96, 160); best of {args.repeats}, forward + backward\n")
    print(f"{'D':>2} {'implementation':<42} {'seconds':>10} {'ratio':>8}")
    for d in (1, 3):
        tags, ids = make_case(d, args.device)
        full = TaggingLoss(margin=margin)(tags, ids)
        ref = loop_loss(tags, ids, margin, None, torch.Generator(), vectorise_pixels=False)
        err = max(abs(full[k].item() - ref[k].item()) / max(abs(ref[k].item()), 1.0) for k in TERMS)
        assert err < 1e-5, f"vectorised and loop losses differ by {err:.2e}"
        vec = TaggingLoss(margin=margin, pixels_per_instance=m, seed=0)
        g = torch.Generator().manual_seed(0)
        rows = [
            ("vectorised TaggingLoss", lambda x: vec(x, ids)),
            ("loop transcription", lambda x: loop_loss(x, ids, margin, m, g, vectorise_pixels=False)),
            ("per-instance loop (pixels vectorised)", lambda x: loop_loss(x, ids, margin, m, g, True)),
        ]
        seconds = best_times([fn for _, fn in rows], tags, args.repeats)
        for (name, _), sec in zip(rows, seconds):
            print(f"{d:>2} {name:<42} {sec:>10.4f} {sec / seconds[0]:>7.1f}x")
        print(f"   (terms agree with the loop transcription to {err:.1e} relative, all pixels)")


if __name__ == "__main__":
    main()
