"""Samples for the softmax-family, glu and hardsigmoid entries.

These entries replace upstream's formula only under an outer derivative (reverse mode
through a forward_ad tangent, forward-over-forward), so the checks that differentiate the
tangent run them and the first-order checks run upstream's; tests/test_reverse_over_forward.py
checks reverse mode through the tangent and that the values stay upstream's.
"""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for


def _dim_out_of_range(device):
    yield ErrorSample((torch.ones(3, 4, dtype=torch.float64, device=device), 2, False), desc="dim out of range")


def _softmax_inputs(make_arg):
    """(desc, input, dim)."""
    yield "last dim", make_arg(3, 5), -1
    yield "middle dim", make_arg(2, 4, 3), 1
    yield "1-d", make_arg(6), 0
    yield "non-contiguous", make_arg(5, 3).mT, 1
    yield "scalar", make_arg(()), 0


@samples_for("aten::_softmax", errors=_dim_out_of_range)
def softmax_samples(dtype, device):
    for desc, x, dim in _softmax_inputs(partial(make_tensor, dtype=dtype, device=device)):
        yield Sample((x, dim, False), desc=desc)


@samples_for("aten::_log_softmax", errors=_dim_out_of_range)
def log_softmax_samples(dtype, device):
    for desc, x, dim in _softmax_inputs(partial(make_tensor, dtype=dtype, device=device)):
        yield Sample((x, dim, False), desc=desc)


@samples_for("aten::_safe_softmax")
def safe_softmax_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for desc, x, dim in _softmax_inputs(make_arg):
        yield Sample((x, dim), desc=desc)
    masked = make_arg(3, 4)
    masked[1] = float("-inf")
    yield Sample((masked, 1), desc="a row all -inf (output and tangent 0)")


@samples_for("aten::logsumexp")
def logsumexp_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(3, 5), [1]), desc="one dim")
    yield Sample((make_arg(2, 3, 4), [0, 2], True), desc="two dims, keepdim")
    yield Sample((make_arg(4, 3).mT, [0]), desc="non-contiguous")


@samples_for("aten::logcumsumexp")
def logcumsumexp_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(3, 5), 1), desc="last dim")
    yield Sample((make_arg(4, 2, 3), 0), desc="first dim")
    yield Sample((make_arg(5, 3).mT, 1), desc="non-contiguous")
    # upstream's tangent loses half of the first entry's here (its 1e-13 dominates exp(-30))
    yield Sample((torch.tensor([[-30.0, 0.0, -5.0], [-40.0, -1.0, 2.0]], dtype=dtype, device=device), 1),
                 desc="spread over 30 along the dim")


def _glu_errors(device):
    yield ErrorSample((torch.ones(3, 5, dtype=torch.float64, device=device), 1), desc="odd size along dim")


@samples_for("aten::glu", errors=_glu_errors)
def glu_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(3, 4), -1), desc="last dim")
    yield Sample((make_arg(6, 2), 0), desc="first dim")
    yield Sample((make_arg(2, 4, 3).transpose(1, 2), 2), desc="non-contiguous")


@samples_for("aten::hardsigmoid")
def hardsigmoid_samples(dtype, device):
    # away from the kinks at ±3, where the function is not differentiable
    yield Sample((make_tensor(4, 5, dtype=dtype, device=device, low=-2.5, high=2.5),), desc="inside (-3, 3)")
    yield Sample((torch.tensor([-5.0, -3.5, -1.0, 0.5, 3.5, 6.0], dtype=dtype, device=device),), desc="both sides")
