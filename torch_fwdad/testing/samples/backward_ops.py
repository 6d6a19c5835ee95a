"""Samples for backward ops (the ops forward-over-reverse differentiates).

A backward op is called as PyTorch's backward formula calls it: the incoming gradient
has the shape of the forward output (0-d after a mean or sum reduction).
"""

from functools import partial

import torch
from torch.testing import make_tensor

from ..second_order import split
from . import (
    NOT_IN_DERIVATIVES_TABLE, OWN_BACKWARD_NOT_IMPLEMENTED, ErrorSample, Sample, no_reverse_mode, samples_for,
    tangent_not_differentiable, third_order, xfail,
)

NONE, MEAN, SUM = 0, 1, 2
REDUCTIONS = {"none": NONE, "mean": MEAN, "sum": SUM}


def _grad_for(make_arg, self, reduction):
    return make_arg(*(self.shape if reduction == NONE else ()))


def _loss_inputs(make_arg):
    yield "2x3", make_arg(2, 3, low=-2, high=2)
    yield "0-d", make_arg(low=-2, high=2)
    yield "empty", make_arg(0, 3)
    yield "transposed", make_arg(3, 2, low=-2, high=2).mT


def _mismatched_loss_inputs(device):
    self = torch.ones(2, 3, dtype=torch.float64, device=device)
    target = torch.ones(4, dtype=torch.float64, device=device)
    return torch.ones(2, 3, dtype=torch.float64, device=device), self, target


def _soft_margin_errors(device):
    yield ErrorSample((*_mismatched_loss_inputs(device), NONE), desc="target shape mismatch")


@samples_for("aten::soft_margin_loss_backward", errors=_soft_margin_errors)
def soft_margin_loss_backward_samples(dtype, device):
    # PyTorch differentiates soft_margin_loss_backward in grad_output and self only.
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for desc, self in _loss_inputs(make_arg):
        target = make_arg(*self.shape, low=-1.5, high=1.5)
        for name, reduction in REDUCTIONS.items():
            grad = _grad_for(make_arg, self, reduction)
            yield Sample((grad, self, target, reduction), desc=f"{desc} {name}", diff=(0, 1))


def _huber_errors(device):
    yield ErrorSample((*_mismatched_loss_inputs(device), NONE, 1.0), desc="target shape mismatch")


@samples_for("aten::huber_loss_backward", errors=_huber_errors)
def huber_loss_backward_samples(dtype, device):
    # Random values stay away from the kinks |self - target| == delta, where finite
    # differences cannot judge; the convention there is tested in tests/test_backward_ops.py.
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    empty_mean = xfail("PyTorch's own batching of huber_loss_backward divides by the element count in Python: vmap of "
                       "the primal alone raises ZeroDivisionError on an empty mean", "vmap_jvp")
    for desc, self in _loss_inputs(make_arg):
        target = make_arg(*self.shape, low=-2, high=2)
        for name, reduction in REDUCTIONS.items():
            delta = 0.5 if reduction == SUM else 1.0
            grad = _grad_for(make_arg, self, reduction)
            yield Sample((grad, self, target, reduction, delta), desc=f"{desc} {name} delta={delta}",
                         xfails=empty_mean if self.numel() == 0 and reduction == MEAN else {})
    self = make_arg(4, low=-1, high=1)
    yield Sample((make_arg(4), self, self.flip(0) + 3.0, NONE, 1.0), desc="all outside delta")


def _dropout_errors(device):
    grad = torch.ones(2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((grad, torch.ones(4, dtype=torch.bool, device=device), 2.0), desc="mask shape mismatch")


@samples_for("aten::native_dropout_backward", errors=_dropout_errors)
def native_dropout_backward_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for desc, shape in (("3x4", (3, 4)), ("0-d", ()), ("empty", (0, 2))):
        mask = torch.rand(shape, device=device) > 0.5
        yield Sample((make_arg(*shape), mask, 2.0), desc=desc)
    mask = torch.rand(2, 3, device=device) > 0.3
    yield Sample((make_arg(3, 2).mT, mask, 1 / 0.7), desc="transposed grad")


def _long(values, device):
    return torch.tensor(values, dtype=torch.long, device=device)


def _spread(make_arg, *shape):
    # |x| up to 9 with margins below 1: no hinge within finite-difference reach of its kink
    return make_arg(*shape, low=-9, high=9)


def _multi_margin_backward_errors(device):
    x = torch.ones(2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((torch.ones((), dtype=torch.float64, device=device), x, _long([0, 1], device), 3, 1.0, None, MEAN), desc="p=3")
    yield ErrorSample((torch.ones((), dtype=torch.float64, device=device), x, _long([0, 5], device), 1, 1.0, None, MEAN),
                      desc="target out of range")


def _no_reverse_mode_at_all(op):
    return (no_reverse_mode(op) | third_order(op, NOT_IN_DERIVATIVES_TABLE)
            | tangent_not_differentiable(op, "the op is linear in grad: its tangent is the op itself at grad's tangent"))


@samples_for("aten::multi_margin_loss_backward", errors=_multi_margin_backward_errors,
             xfails=_no_reverse_mode_at_all("aten::multi_margin_loss_backward"))
def multi_margin_loss_backward_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    target = _long([0, 2, 4, 1], device)
    weight = make_arg(5, low=0.5, high=2.0)
    for p in (1, 2):
        for name, reduction in REDUCTIONS.items():
            x = _spread(make_arg, 4, 5)
            yield Sample((_grad_for(make_arg, x[:, 0], reduction), x, target, p, 0.7, None, reduction), desc=f"p={p} {name}")
        x = _spread(make_arg, 4, 5)
        yield Sample((_grad_for(make_arg, x[:, 0], NONE), x, target, p, 0.5, weight, NONE), desc=f"p={p} weight none")
        yield Sample((make_arg(), x, target, p, 0.5, weight, MEAN), desc=f"p={p} weight mean")
    x = _spread(make_arg, 5, 4).mT
    yield Sample((make_arg(), x, target, 2, 0.5, None, SUM), desc="transposed")
    yield Sample((make_arg(), _spread(make_arg, 5), _long(3, device), 2, 1.0, None, NONE), desc="1-d input")
    yield Sample((make_arg(), _spread(make_arg), _long(0, device), 2, 1.0, None, NONE), desc="0-d input")
    yield Sample((make_arg(0), make_arg(0, 3), _long([], device), 2, 1.0, None, NONE), desc="empty batch")


def _multilabel_call(make_arg, x, target, reduction, desc):
    _, is_target = torch.ops.aten.multilabel_margin_loss_forward(x, target, reduction)
    grad = make_arg(*(x.shape[:-1] if reduction == NONE and x.dim() > 1 else ()))
    # is_target is a 0/1 mask read through `!= 0`: finite differences of it are meaningless
    return Sample((grad, x, target, reduction, is_target), desc=desc, diff=(0, 1))


def _multilabel_backward_errors(device):
    x = torch.ones(2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((torch.ones((), dtype=torch.float64, device=device), x, _long([0, 1], device), MEAN, x), desc="target shape mismatch")


@samples_for("aten::multilabel_margin_loss_backward", errors=_multilabel_backward_errors,
             xfails=_no_reverse_mode_at_all("aten::multilabel_margin_loss_backward"))
def multilabel_margin_loss_backward_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    # labels end at the first -1; row 1 repeats a label; row 3 has none
    target = _long([[0, 3, -1, 1, 2], [2, 2, -1, -1, 0], [4, 0, 1, 3, -1], [-1, 1, 1, 1, 1]], device)
    for name, reduction in REDUCTIONS.items():
        yield _multilabel_call(make_arg, _spread(make_arg, 4, 5), target, reduction, name)
    yield _multilabel_call(make_arg, _spread(make_arg, 5, 4).mT, target, SUM, "transposed")
    yield _multilabel_call(make_arg, _spread(make_arg, 5), _long([1, 4, -1, 0, 0], device), NONE, "1-d input")
    yield _multilabel_call(make_arg, make_arg(0, 3), torch.zeros(0, 3, dtype=torch.long, device=device), NONE, "empty batch")


@samples_for("aten::hardsigmoid_backward", xfails=_no_reverse_mode_at_all("aten::hardsigmoid_backward"))
def hardsigmoid_backward_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    # kinks at ±3 kept out of finite-difference reach; both flat sides and the slope
    x = torch.tensor([-5.0, -2.5, -1.0, 0.0, 0.5, 2.9, 3.5, 7.0], dtype=dtype, device=device)
    yield Sample((make_arg(8), x), desc="both sides of the ramp")
    yield Sample((make_arg(3, 2).mT, x[:6].reshape(3, 2).mT), desc="transposed")
    yield Sample((make_arg(), x[2]), desc="0-d")
    yield Sample((make_arg(0, 2), make_arg(0, 2)), desc="empty")


def _own_backward_not_implemented(op):
    return no_reverse_mode(op) | third_order(op, OWN_BACKWARD_NOT_IMPLEMENTED)


def _cdist_call(x1, x2, p, desc, diff=None, xfails=None):
    dist = torch.cdist(x1, x2, p=p, compute_mode="donot_use_mm_for_euclid_dist")
    grad = torch.randn_like(dist)
    return Sample((grad, x1, x2, p, dist), desc=f"{desc} p={p}", diff=diff, xfails=xfails or {})


@samples_for("aten::_cdist_backward", xfails=_own_backward_not_implemented("aten::_cdist_backward"))
def cdist_backward_samples(dtype, device):
    points = partial(make_tensor, dtype=dtype, device=device, low=-1, high=1)
    for p in (0.5, 1.0, 1.5, 2.0, 3.0):
        yield _cdist_call(points(3, 2), points(4, 2), p, "3x4 pairs")
    yield _cdist_call(points(2, 2, 3), points(2, 3, 3), 2.0, "batched")
    yield _cdist_call(points(1, 2, 2), points(2, 3, 2), 3.0, "broadcast batch")
    yield _cdist_call(points(0, 2), points(3, 2), 2.0, "empty x1")
    # empty broadcast batches: the kernel returns zeros of x1's shape, not the broadcast one
    for shape1, shape2 in (((0, 4, 5), (3, 5)), ((1, 4, 5), (0, 3, 5)), ((0, 1, 4, 5), (2, 3, 5)), ((3, 5), (0, 4, 5))):
        vmap_shape = xfail("vmap of PyTorch's _cdist_backward primal over this empty broadcast batch returns shape "
                           "(B, 1, 3, 5) where a loop gives (3, 5), measured with torch_fwdad disabled (the check "
                           "compares the primal output first, before any tangent)", "vmap_jvp")
        yield _cdist_call(points(*shape1), points(*shape2), 2.0, f"empty broadcast batch {shape1} {shape2}",
                          xfails=vmap_shape if (shape1, shape2) == ((3, 5), (0, 4, 5)) else None)
    yield _cdist_call(points(2, 0), points(3, 0), 2.0, "no coordinates")
    yield _cdist_call(points(2, 3), points(3, 3), 0.0, "p=0 counts coordinates")
    # For p=inf a coordinate contributes only where |diff| equals the distance exactly:
    # perturbing x1, x2 or the distance breaks the tie, so finite differences judge the
    # linear term in grad only.
    yield _cdist_call(points(3, 2), points(4, 2), float("inf"), "inf norm", diff=(0,),
                      xfails=xfail("vmap of PyTorch's _cdist_backward primal with p=inf disagrees with a loop, measured "
                                   "with torch_fwdad disabled (the check compares the primal output first, before any "
                                   "tangent)", "vmap_jvp"))


def _pdist_call(x, p, desc, diff=None):
    dist = torch.pdist(x, p=p)
    return Sample((torch.randn_like(dist), x, p, dist), desc=f"{desc} p={p}", diff=diff)


def _pdist_errors(device):
    x = torch.ones(3, 4, dtype=torch.float64, device=device).mT
    yield ErrorSample((torch.ones(6, dtype=torch.float64, device=device), x, 2.0, torch.ones(6, dtype=torch.float64, device=device)),
                      desc="self not contiguous")


@samples_for("aten::_pdist_backward", errors=_pdist_errors, xfails=_own_backward_not_implemented("aten::_pdist_backward"))
def pdist_backward_samples(dtype, device):
    points = partial(make_tensor, dtype=dtype, device=device, low=-1, high=1)
    for p in (0.5, 1.0, 1.5, 2.0, 3.0):
        yield _pdist_call(points(4, 2), p, "4 points")
    yield _pdist_call(points(1, 3), 2.0, "one point, no pairs")
    yield _pdist_call(points(3, 0), 2.0, "no coordinates")
    yield _pdist_call(points(3, 2), float("inf"), "inf norm", diff=(0,))


# ------------------------------------------------- covered upstream (report-only samples)
# Backward ops torch differentiates through decompositions_for_jvp, with no derivatives.yaml
# entry of ours. Each case is a scalar function of a flat parameter vector whose reverse
# pass calls the backward op; a sample is its gradient (torch.func.grad), so forward AD of
# the sample is forward-over-reverse through the backward op. tests/test_backward_ops.py
# checks their Hessians and that the op is reached; the coverage report measures them.

UPSTREAM_DT = torch.float64


def fixed(*shape, seed):
    return torch.randn(*shape, dtype=UPSTREAM_DT, generator=torch.Generator().manual_seed(seed))


TARGET = torch.tensor([0, 2, 1, 2])
CLASS_WEIGHT = torch.tensor([0.5, 2.0, 1.0], dtype=UPSTREAM_DT)


def nll_with_weights_and_ignore(theta):
    import torch.nn.functional as F

    logits = theta.reshape(4, 3)
    return F.nll_loss(F.log_softmax(logits, -1) * 1.5, TARGET, weight=CLASS_WEIGHT, ignore_index=1)


def nll2d(theta):
    import torch.nn.functional as F

    logits = theta.reshape(1, 3, 2, 2)
    return F.nll_loss(torch.tanh(logits), TARGET.reshape(1, 2, 2), reduction="sum")


PAYOFF = fixed(2, 4, seed=1)


def softmax_moments(theta):
    probabilities = torch.softmax(theta.reshape(2, 4), dim=-1)
    return (probabilities * PAYOFF).sum() + probabilities.pow(2).sum()


def log_softmax_weighted(theta):
    import torch.nn.functional as F

    return (F.log_softmax(theta.reshape(2, 4), dim=0) * PAYOFF).sum()


def layer_norm_affine(theta):
    import torch.nn.functional as F

    x, w, b = split(theta, (3, 4), (4,), (4,))
    return torch.tanh(F.layer_norm(x, (4,), w, b)).pow(2).sum()


def batch_norm_no_running_stats(theta):
    import torch.nn.functional as F

    x, w, b = split(theta, (4, 2), (2,), (2,))
    return torch.tanh(F.batch_norm(x, None, None, w, b, training=True)).pow(2).sum()


def batch_norm_eval(theta):
    import torch.nn.functional as F

    x, w, b = split(theta, (3, 2), (2,), (2,))
    stats = torch.tensor([0.1, -0.2], dtype=UPSTREAM_DT), torch.tensor([0.5, 2.0], dtype=UPSTREAM_DT)
    return torch.tanh(F.batch_norm(x, *stats, w, b, training=False)).pow(2).sum()


def batch_norm_with_update(theta):
    # The op torch.export / compile trace batch norm to (eager F.batch_norm calls
    # native_batch_norm). Fresh running statistics per call, so no state leaks.
    x, w, b = split(theta, (4, 2), (2,), (2,))
    stats = torch.zeros(2, dtype=UPSTREAM_DT), torch.ones(2, dtype=UPSTREAM_DT)
    out = torch.ops.aten._batch_norm_with_update(x, w, b, *stats, 0.1, 1e-5)[0]
    return torch.tanh(out).pow(2).sum()


def batch_norm_no_update(theta):
    x, w, b = split(theta, (3, 2), (2,), (2,))
    stats = torch.tensor([0.1, -0.2], dtype=UPSTREAM_DT), torch.tensor([0.5, 2.0], dtype=UPSTREAM_DT)
    out = torch.ops.aten._batch_norm_no_update(x, w, b, *stats, 0.1, 1e-5)[0]
    return torch.tanh(out).pow(2).sum()


# (backward op, scalar function, parameter count)
UPSTREAM_CASES = [
    ("nll_loss_backward", nll_with_weights_and_ignore, 12),
    ("nll_loss2d_backward", nll2d, 12),
    ("_softmax_backward_data", softmax_moments, 8),
    ("_log_softmax_backward_data", log_softmax_weighted, 8),
    ("native_layer_norm_backward", layer_norm_affine, 20),
    ("native_batch_norm_backward", batch_norm_no_running_stats, 12),
    ("native_batch_norm_backward", batch_norm_eval, 10),
    ("batch_norm_backward", batch_norm_with_update, 12),
    ("batch_norm_backward", batch_norm_no_update, 10),
]


def _gradient_of(f):
    def wrapper(op, theta):
        # `op` (the backward op) is reached inside f's reverse pass, not called directly
        return torch.func.grad(f)(theta)
    return wrapper


def _register_upstream(backward_op):
    cases = [(f, size) for op, f, size in UPSTREAM_CASES if op == backward_op]

    @samples_for(f"aten::{backward_op}", upstream_covers="decompositions_for_jvp")
    def generate(dtype, device):
        for f, size in cases:
            theta = fixed(size, seed=0).to(dtype=dtype, device=device)
            yield Sample((theta,), desc=f"gradient of {f.__name__}", wrapper=_gradient_of(f))

    return generate


for _op in dict.fromkeys(op for op, _, _ in UPSTREAM_CASES):
    _register_upstream(_op)
