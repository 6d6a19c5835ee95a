"""Samples for the CPU kernels behind torch.nn utilities (weight norm, rrelu)."""

import torch

from . import ErrorSample, Sample, make, samples_for


def _weight_norm_errors(device):
    # the kernel normalises over every dim but the first or the last only
    yield ErrorSample((torch.randn(2, 3, 4, dtype=torch.float64, device=device),
                       torch.randn(1, 3, 1, dtype=torch.float64, device=device), 1), desc="middle dim")


@samples_for("aten::_weight_norm_interface", errors=_weight_norm_errors)
def weight_norm_interface_samples(dtype, device):
    yield Sample((make(3, 4, dtype=dtype, device=device), make(3, 1, dtype=dtype, device=device), 0), desc="2-d, dim 0")
    yield Sample((make(2, 3, 4, dtype=dtype, device=device), make(1, 1, 4, dtype=dtype, device=device), 2), desc="3-d, last dim")
    yield Sample((make(4, 2, 2, dtype=dtype, device=device, noncontiguous=True), make(4, 1, 1, dtype=dtype, device=device), 0),
                 desc="conv weight, non-contiguous")


def _away_from_zero(x):
    # the kink at 0 would mislead finite differences
    return x.sign() * (x.abs() + 0.5)


def _seeded(op, *args):
    # a fresh generator per call draws the same slopes, so finite differences see one function
    return op(*args, generator=torch.Generator(device=args[0].device).manual_seed(0))




@samples_for("aten::rrelu_with_noise_functional")
def rrelu_with_noise_functional_samples(dtype, device):
    x = _away_from_zero(make(3, 4, dtype=dtype, device=device))
    noise = torch.zeros_like(x)
    yield Sample((x, noise, 0.1, 0.3, False), desc="eval", diff=(0,))
    yield Sample((x, noise, 0.1, 0.3, True), desc="training, seeded", diff=(0,), wrapper=_seeded)
    yield Sample((x, noise, 0.2, 0.2, True), desc="training, lower == upper", diff=(0,))
