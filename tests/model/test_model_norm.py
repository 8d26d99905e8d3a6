"""The encoder's BatchNorm3d: the same numbers as ``nn.BatchNorm3d`` on every path it takes."""
import pytest
import torch
from torch import nn

from tagvis_lib.model import norm
from tagvis_lib.model.norm import BatchNorm3d, fold_factor, rows_view

CL = torch.channels_last_3d


@pytest.fixture
def fold_small(monkeypatch):
    """Small test inputs take the folded path too; yields the list of the fold's calls."""
    calls = []
    apply = norm._FoldedBatchNorm.apply
    monkeypatch.setattr(norm, "FOLD_MIN_ELEMENTS", 0)
    monkeypatch.setattr(norm._FoldedBatchNorm, "apply", lambda *a: calls.append(a[0].shape) or apply(*a))
    return calls


def _pair(channels, momentum=0.1, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    ref = nn.BatchNorm3d(channels, momentum=momentum).to(dtype)
    nn.init.normal_(ref.weight), nn.init.normal_(ref.bias)
    ref.running_mean.normal_(), ref.running_var.uniform_(0.5, 2.0)
    ours = BatchNorm3d(channels, momentum=momentum).to(dtype)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _run(module, x, grad, steps=2):
    """Output, input/weight/bias gradients and buffers after ``steps`` forward passes and one backward."""
    x = x.detach().clone().requires_grad_()
    module.zero_grad()
    for _ in range(steps):
        y = module(x)
    y.backward(grad)
    return [y.detach(), x.grad, module.weight.grad, module.bias.grad, module.running_mean.clone(),
            module.running_var.clone(), module.num_batches_tracked.clone()]


def _compare_in_float64(shape, training, momentum):
    """torch's and our module on one float64 channels-last input, asserted equal to 1e-12; returns our
    module's results (as :func:`_run` lists them), the module and the input."""
    ref, ours = _pair(shape[1], momentum)
    ref.train(training), ours.train(training)
    x = (torch.randn(shape, dtype=torch.float64) * 2 + 1).contiguous(memory_format=CL)
    grad = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=CL)
    expected, got = _run(ref, x, grad), _run(ours, x, grad)
    for name, a, b in zip(("y", "x.grad", "weight.grad", "bias.grad", "running_mean", "running_var", "batches"),
                          expected, got):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12, msg=name)
    return got, ours, x


@pytest.mark.parametrize("shape,training,momentum", [
    ((2, 36, 4, 6, 10), True, 0.1),   # folded 4 positions a row
    ((2, 11, 3, 4, 8), True, None),   # folded 16 a row, cumulative running average
    ((1, 36, 1, 2, 4), True, 0.3),    # two positions per column group
    ((2, 57, 2, 4, 4), False, 0.1),   # eval mode with gradients (train.batchnorm="frozen")
])
def test_folded_batchnorm_equals_torch_in_float64(shape, training, momentum, fold_small):
    got, _, _ = _compare_in_float64(shape, training, momentum)
    assert got[0].is_contiguous(memory_format=CL) and got[1].is_contiguous(memory_format=CL)
    assert len(fold_small) == 2  # both forward passes of the module went through the fold



def test_folded_batchnorm_in_bf16_is_as_close_to_float64_as_torchs(fold_small):
    ref, ours = _pair(36, dtype=torch.float32)
    shape = (2, 36, 4, 12, 20)
    x = (torch.randn(shape) * 3 + 1).contiguous(memory_format=CL)
    grad = torch.randn(shape).contiguous(memory_format=CL)
    exact = _run(ref.double(), x.double(), grad.double())
    ref.float().load_state_dict(ours.state_dict())
    for module in (ref, ours):
        got = _run(module, x.bfloat16(), grad.bfloat16(), steps=1)
        for a, b in zip(exact[:4], got[:4]):
            assert ((a - b.double()).abs().max() / a.abs().max()).item() < 1e-2
    assert len(fold_small) == 1


def test_inputs_the_fold_does_not_fit_take_torchs_path_exactly(fold_small, monkeypatch):
    cases = [((2, 16, 2, 4, 4), CL), ((2, 36, 2, 4, 4), torch.contiguous_format), ((1, 36, 1, 1, 3), CL),
             ((2, 72, 2, 4, 4), CL)]  # 72 channels: torch's kernels are faster there
    for shape, fmt in cases + [((2, 36, 2, 4, 4), CL)]:
        if shape == (2, 36, 2, 4, 4) and fmt is CL:  # foldable, but below the size where folding pays
            monkeypatch.setattr(norm, "FOLD_MIN_ELEMENTS", 2 ** 19)
        ref, ours = _pair(shape[1], dtype=torch.float32)
        x = torch.randn(shape).contiguous(memory_format=fmt)
        grad = torch.randn(shape).contiguous(memory_format=fmt)
        for a, b in zip(_run(ref, x, grad), _run(ours, x, grad)):
            assert torch.equal(a, b)
    assert fold_small == []


@pytest.mark.parametrize("training,momentum", [(True, 0.1), (True, None), (False, 0.1)])
def test_one_channels_last_frame_runs_on_the_4d_view_with_torchs_results(training, momentum):
    # (B, C, 1, H, W): torch's kernels on the plainly channels-last (B, C, H, W) view, so the input
    # gradient stays channels-last; a copy, so an in-place ReLU after it keeps the ordinary backward
    got, ours, x = _compare_in_float64((2, 72, 1, 3, 5), training, momentum)
    assert got[0].stride()[1] == 1 and got[1].stride()[1] == 1  # channels-last output and input gradient
    y = ours(x.detach().clone().requires_grad_())
    assert not y._is_view()
    assert type(torch.relu_(y).grad_fn).__name__ == "ReluBackward0"


def test_fold_factor_and_rows_view():
    assert fold_factor(36, 61440) == 4 and fold_factor(11, 61440) == 16 and fold_factor(16, 7) == 1
    assert fold_factor(36, 6) is None  # 4, 8, 16, 32 do not divide 6 positions
    x = torch.arange(2 * 36 * 2 * 2 * 2.0).reshape(2, 2, 2, 2, 36).permute(0, 4, 1, 2, 3)
    rows = rows_view(x, 4)
    assert rows.shape == (1, 144, 1, 1, 4) and rows.data_ptr() == x.data_ptr()
    assert torch.equal(rows[0, :, 0, 0, 1], torch.arange(144.0, 288.0))
