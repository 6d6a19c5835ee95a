"""Samples for the fake-quantize family (straight-through estimator)."""

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for, xfail

# Every sample has values inside the range and values clamped at both ends (with
# scale 0.25 and quant range [-8, 7] the representable interval is about [-2, 1.75]).
QMIN, QMAX = -8, 7
STRAIGHT_THROUGH = xfail(
    "straight-through estimator: like PyTorch's backward formula, the tangent treats rounding "
    "as the identity, while finite differences see the piecewise-constant primal (zero slope)", "gradcheck")


def _values(*shape, dtype, device, noncontiguous=False):
    return make_tensor(*shape, dtype=dtype, device=device, low=-3, high=3, noncontiguous=noncontiguous)


@samples_for("aten::fake_quantize_per_tensor_affine_cachemask",
             errors=lambda device: _per_tensor_errors(device), xfails=STRAIGHT_THROUGH)
def per_tensor_samples(dtype, device):
    yield Sample((_values(4, 5, dtype=dtype, device=device), 0.25, 0, QMIN, QMAX), desc="2-d")
    yield Sample((_values(3, 2, 4, dtype=dtype, device=device, noncontiguous=True), 0.25, 2, QMIN, QMAX), desc="non-contiguous, zero_point 2")


def _per_tensor_errors(device):
    x = torch.randn(3, dtype=torch.float64, device=device)
    yield ErrorSample((x, 0.25, 0, 5, 2), desc="quant_min above quant_max")
    yield ErrorSample((x, 0.25, 9, QMIN, QMAX), desc="zero_point out of range")


@samples_for("aten::_fake_quantize_per_tensor_affine_cachemask_tensor_qparams", xfails=STRAIGHT_THROUGH)
def per_tensor_qparams_samples(dtype, device):
    # scale and zero_point have no derivative in PyTorch's formula: only self varies
    scale = torch.tensor([0.25], dtype=torch.float32, device=device)
    zero_point = torch.tensor([1], dtype=torch.int32, device=device)
    enabled = torch.tensor([1], dtype=torch.long, device=device)
    yield Sample((_values(4, 5, dtype=dtype, device=device), scale, zero_point, enabled, QMIN, QMAX), desc="2-d", diff=(0,))
    yield Sample((_values(6, dtype=dtype, device=device), scale, zero_point, enabled, QMIN, QMAX), desc="1-d", diff=(0,))


@samples_for("aten::fake_quantize_per_channel_affine_cachemask",
             errors=lambda device: _per_channel_errors(device), xfails=STRAIGHT_THROUGH)
def per_channel_samples(dtype, device):
    scale = torch.tensor([0.25, 0.5, 0.125], dtype=torch.float32, device=device)
    zero_point = torch.tensor([0, 2, -1], dtype=torch.int32, device=device)
    yield Sample((_values(3, 4, dtype=dtype, device=device), scale, zero_point, 0, QMIN, QMAX), desc="axis 0", diff=(0,))
    yield Sample((_values(2, 3, 5, dtype=dtype, device=device).mT.contiguous().mT, scale, zero_point, 1, QMIN, QMAX),
                 desc="axis 1, non-contiguous", diff=(0,))


def _per_channel_errors(device):
    x = torch.randn(3, 4, dtype=torch.float64, device=device)
    scale = torch.tensor([0.25, 0.5], device=device)
    zero_point = torch.tensor([0, 0], dtype=torch.int32, device=device)
    yield ErrorSample((x, scale, zero_point, 0, QMIN, QMAX), desc="scale shorter than the axis")


# Learnable scale and zero point: PyTorch's backward takes float32 only, so these run in
# float32 in tests/test_float32_only_kernels.py (Jacobians against the backward's) rather
# than through the float64 check matrix.
def _qparam(*values, device):
    return torch.tensor(values, dtype=torch.float32, device=device)


@samples_for("aten::_fake_quantize_learnable_per_tensor_affine", dtypes=(torch.float32,), cpu_runnable=False)
def learnable_per_tensor_samples(dtype, device):
    x = _values(4, 5, dtype=dtype, device=device)
    yield Sample((x, _qparam(0.25, device=device), _qparam(1.0, device=device), QMIN, QMAX), desc="2-d")
    yield Sample((_values(3, 2, 4, dtype=dtype, device=device, noncontiguous=True), _qparam(0.3, device=device),
                  _qparam(2.3, device=device), QMIN, QMAX, 0.5), desc="non-contiguous, fractional zero_point, grad_factor")
    # the backward truncates z + 0.5 (here to 0) where the forward rounds (-1)
    yield Sample((x, _qparam(0.25, device=device), _qparam(-1.3, device=device), QMIN, QMAX),
                 desc="negative fractional zero_point")


@samples_for("aten::_fake_quantize_learnable_per_channel_affine", dtypes=(torch.float32,), cpu_runnable=False)
def learnable_per_channel_samples(dtype, device):
    scale, zero_point = _qparam(0.25, 0.5, 0.125, device=device), _qparam(0.0, 2.4, -1.0, device=device)
    yield Sample((_values(3, 4, dtype=dtype, device=device), scale, zero_point, 0, QMIN, QMAX), desc="axis 0")
    yield Sample((_values(2, 3, 5, dtype=dtype, device=device).mT.contiguous().mT, scale, zero_point, 1, QMIN, QMAX, 0.5),
                 desc="axis 1, non-contiguous, grad_factor")
