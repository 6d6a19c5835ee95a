"""Samples for backward ops (the ops forward-over-reverse differentiates).

A backward op is called as PyTorch's backward formula calls it: the incoming gradient
has the shape of the forward output (0-d after a mean or sum reduction).
"""

import torch

from . import ErrorSample, Sample, make, samples_for

NONE, MEAN, SUM = 0, 1, 2
REDUCTIONS = {"none": NONE, "mean": MEAN, "sum": SUM}


def _grad_for(self, reduction, dtype, device):
    return make(*(self.shape if reduction == NONE else ()), dtype=dtype, device=device)


def _loss_inputs(dtype, device):
    yield "2x3", make(2, 3, dtype=dtype, device=device, low=-2, high=2)
    yield "0-d", make(dtype=dtype, device=device, low=-2, high=2)
    yield "empty", make(0, 3, dtype=dtype, device=device)
    yield "transposed", make(3, 2, dtype=dtype, device=device, low=-2, high=2).mT


def _mismatched_loss_inputs(device):
    self = torch.ones(2, 3, dtype=torch.float64, device=device)
    target = torch.ones(4, dtype=torch.float64, device=device)
    return torch.ones(2, 3, dtype=torch.float64, device=device), self, target


def _soft_margin_errors(device):
    yield ErrorSample((*_mismatched_loss_inputs(device), NONE), desc="target shape mismatch")


@samples_for("aten::soft_margin_loss_backward", errors=_soft_margin_errors)
def soft_margin_loss_backward_samples(dtype, device):
    # PyTorch differentiates soft_margin_loss_backward in grad_output and self only.
    for desc, self in _loss_inputs(dtype, device):
        target = make(*self.shape, dtype=dtype, device=device, low=-1.5, high=1.5)
        for name, reduction in REDUCTIONS.items():
            grad = _grad_for(self, reduction, dtype, device)
            yield Sample((grad, self, target, reduction), desc=f"{desc} {name}", diff=(0, 1))


def _huber_errors(device):
    yield ErrorSample((*_mismatched_loss_inputs(device), NONE, 1.0), desc="target shape mismatch")


@samples_for("aten::huber_loss_backward", errors=_huber_errors)
def huber_loss_backward_samples(dtype, device):
    # Random values stay away from the kinks |self - target| == delta, where finite
    # differences cannot judge; the convention there is tested in tests/test_backward_ops.py.
    for desc, self in _loss_inputs(dtype, device):
        target = make(*self.shape, dtype=dtype, device=device, low=-2, high=2)
        for name, reduction in REDUCTIONS.items():
            delta = 0.5 if reduction == SUM else 1.0
            grad = _grad_for(self, reduction, dtype, device)
            yield Sample((grad, self, target, reduction, delta), desc=f"{desc} {name} delta={delta}")
    self = make(4, dtype=dtype, device=device, low=-1, high=1)
    yield Sample((make(4, dtype=dtype, device=device), self, self.flip(0) + 3.0, NONE, 1.0), desc="all outside delta")


def _dropout_errors(device):
    grad = torch.ones(2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((grad, torch.ones(4, dtype=torch.bool, device=device), 2.0), desc="mask shape mismatch")


@samples_for("aten::native_dropout_backward", errors=_dropout_errors)
def native_dropout_backward_samples(dtype, device):
    for desc, shape in (("3x4", (3, 4)), ("0-d", ()), ("empty", (0, 2))):
        mask = torch.rand(shape, device=device) > 0.5
        yield Sample((make(*shape, dtype=dtype, device=device), mask, 2.0), desc=desc)
    mask = torch.rand(2, 3, device=device) > 0.3
    yield Sample((make(3, 2, dtype=dtype, device=device).mT, mask, 1 / 0.7), desc="transposed grad")


def _cdist_call(x1, x2, p, desc, diff=None):
    dist = torch.cdist(x1, x2, p=p, compute_mode="donot_use_mm_for_euclid_dist")
    grad = torch.randn_like(dist)
    return Sample((grad, x1, x2, p, dist), desc=f"{desc} p={p}", diff=diff)


@samples_for("aten::_cdist_backward")
def cdist_backward_samples(dtype, device):
    def points(*shape):
        return make(*shape, dtype=dtype, device=device, low=-1, high=1)

    for p in (0.5, 1.0, 1.5, 2.0, 3.0):
        yield _cdist_call(points(3, 2), points(4, 2), p, "3x4 pairs")
    yield _cdist_call(points(2, 2, 3), points(2, 3, 3), 2.0, "batched")
    yield _cdist_call(points(1, 2, 2), points(2, 3, 2), 3.0, "broadcast batch")
    yield _cdist_call(points(0, 2), points(3, 2), 2.0, "empty x1")
    yield _cdist_call(points(2, 0), points(3, 0), 2.0, "no coordinates")
    yield _cdist_call(points(2, 3), points(3, 3), 0.0, "p=0 counts coordinates")
    # For p=inf a coordinate contributes only where |diff| equals the distance exactly:
    # perturbing x1, x2 or the distance breaks the tie, so finite differences judge the
    # linear term in grad only.
    yield _cdist_call(points(3, 2), points(4, 2), float("inf"), "inf norm", diff=(0,))


def _pdist_call(x, p, desc, diff=None):
    dist = torch.pdist(x, p=p)
    return Sample((torch.randn_like(dist), x, p, dist), desc=f"{desc} p={p}", diff=diff)


def _pdist_errors(device):
    x = torch.ones(3, 4, dtype=torch.float64, device=device).mT
    yield ErrorSample((torch.ones(6, dtype=torch.float64, device=device), x, 2.0, torch.ones(6, dtype=torch.float64, device=device)),
                      desc="self not contiguous")


@samples_for("aten::_pdist_backward", errors=_pdist_errors)
def pdist_backward_samples(dtype, device):
    def points(*shape):
        return make(*shape, dtype=dtype, device=device, low=-1, high=1)

    for p in (0.5, 1.0, 1.5, 2.0, 3.0):
        yield _pdist_call(points(4, 2), p, "4 points")
    yield _pdist_call(points(1, 3), 2.0, "one point, no pairs")
    yield _pdist_call(points(3, 0), 2.0, "no coordinates")
    yield _pdist_call(points(3, 2), float("inf"), "inf norm", diff=(0,))
