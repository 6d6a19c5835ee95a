"""Samples for the CPU kernels behind torch.nn utilities (weight norm, rrelu)."""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for, xfail


def _weight_norm_errors(device):
    # the kernel normalises over every dim but the first or the last only
    yield ErrorSample((torch.randn(2, 3, 4, dtype=torch.float64, device=device),
                       torch.randn(1, 3, 1, dtype=torch.float64, device=device), 1), desc="middle dim")


@samples_for("aten::_weight_norm_interface", errors=_weight_norm_errors)
def weight_norm_interface_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(3, 4), make_arg(3, 1), 0), desc="2-d, dim 0")
    yield Sample((make_arg(2, 3, 4), make_arg(1, 1, 4), 2), desc="3-d, last dim")
    yield Sample((make_arg(4, 2, 2, noncontiguous=True), make_arg(4, 1, 1), 0),
                 desc="conv weight, non-contiguous")


def _away_from_zero(x):
    # the kink at 0 would mislead finite differences
    return x.sign() * (x.abs() + 0.5)


def _seeded(op, *args):
    # a fresh generator per call draws the same slopes, so finite differences see one function
    return op(*args, generator=torch.Generator(device=args[0].device).manual_seed(0))


@samples_for("aten::rrelu_with_noise_functional")
def rrelu_with_noise_functional_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    x = _away_from_zero(make_arg(3, 4))
    noise = torch.zeros_like(x)
    yield Sample((x, noise, 0.1, 0.3, False), desc="eval", diff=(0,))
    wrong_reverse_mode = xfail(
        "PyTorch's backward for rrelu_with_noise_functional reads the input noise, which this "
        "functional overload does not fill (noise_out holds the drawn slopes): its reverse-mode "
        "gradient in training is wrong, so the JVP (right, per finite differences) cannot match it", "jvp_vjp")
    random_slopes = xfail(
        "training draws random slopes (lower < upper): the vmapped call and the loop draw different ones", "vmap_jvp")
    yield Sample((x, noise, 0.1, 0.3, True), desc="training, seeded", diff=(0,), wrapper=_seeded,
                 xfails=wrong_reverse_mode | random_slopes)
    yield Sample((x, noise, 0.2, 0.2, True), desc="training, lower == upper", diff=(0,), xfails=wrong_reverse_mode)
