"""Samples for the loss entries: multi_margin_loss, multilabel_margin_loss_forward.

Neither kernel supports complex dtypes. Inputs are spread (|x| up to 9, margin < 1) so
that no hinge sits within finite-difference reach of its kink.
"""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for

REDUCTIONS = (0, 1, 2)  # none, mean, sum (at::Reduction)
WEIGHT_NOT_DIFFERENTIABLE = (0,)  # weight carries no tangent, as in PyTorch


def _long(values, device):
    return torch.tensor(values, dtype=torch.long, device=device)


def _multi_margin_errors(device):
    x = torch.ones(2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((x, _long([0, 1], device), 3), desc="p=3")
    yield ErrorSample((x, _long([0, 3], device)), desc="target out of range")
    yield ErrorSample((x, _long([0, 1, 2], device)), desc="target size mismatch")


@samples_for("aten::multi_margin_loss", errors=_multi_margin_errors)
def multi_margin_loss_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)

    target = _long([0, 2, 4, 1], device)
    weight = make_arg(5, low=0.5, high=2.0)
    for p in (1, 2):
        for reduction in REDUCTIONS:
            yield Sample((make_arg(4, 5), target, p, 1, None, reduction), desc=f"p={p} reduction={reduction}")
        yield Sample((make_arg(4, 5), target, p, 0.7, weight, 1), desc=f"p={p} margin weight", diff=WEIGHT_NOT_DIFFERENTIABLE)
    yield Sample((make_arg(5, 4).mT, target, 2, 0.5, None, 2), desc="transposed")
    yield Sample((make_arg(5), _long(3, device), 1, 1, None, 0), desc="1-d input")
    yield Sample((make_arg(), _long(0, device), 2, 1, None, 0), desc="0-d input")
    # mean/sum over an empty batch read uninitialised memory upstream; 'none' is exact
    yield Sample((make_arg(0, 3), _long([], device), 1, 1, None, 0), desc="empty batch")


def _multilabel_errors(device):
    x = torch.ones(2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((x, _long([[0, 3, -1], [1, -1, 0]], device), 1), desc="label out of range")
    yield ErrorSample((x, _long([0, 1], device), 1), desc="target shape mismatch")


@samples_for("aten::multilabel_margin_loss_forward", errors=_multilabel_errors)
def multilabel_margin_loss_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)

    # labels end at the first -1; row 1 repeats a label; row 3 has none; row 2 all but one
    target = _long([[0, 3, -1, 1, 2], [2, 2, -1, -1, 0], [4, 0, 1, 3, -1], [-1, 1, 1, 1, 1]], device)
    for reduction in REDUCTIONS:
        yield Sample((make_arg(4, 5), target, reduction), desc=f"reduction={reduction}")
    yield Sample((make_arg(5, 4).mT, target, 2), desc="transposed")
    yield Sample((make_arg(5), _long([1, 4, -1, 0, 0], device), 0), desc="1-d input")
    yield Sample((make_arg(), _long(0, device), 1), desc="0-d input")
    yield Sample((make_arg(3, 3), _long([[0, 1, 2]] * 3, device), 2), desc="every class a label")
    yield Sample((make_arg(0, 3), torch.zeros(0, 3, dtype=torch.long, device=device), 0), desc="empty batch")
