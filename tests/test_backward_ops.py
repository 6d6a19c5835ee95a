"""Forward-over-reverse (Hessians) through the backward ops of torch's derivatives table.

Each case is a small scalar function of a flat parameter vector whose reverse pass calls
one backward op. Its Hessian by torch.func.hessian (forward-mode AD over the reverse
pass, so the backward op's JVP) must match central differences of the reverse-mode
gradient, and the backward op must really be reached. The first group needs nothing
from torch_fwdad (torch differentiates those through decompositions_for_jvp): it runs
with torch_fwdad disabled, which proves upstream covers them. The second group is what
derivatives.yaml adds.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

import torch_fwdad
from torch_fwdad._generated.jvp_rules import ENTRIES
from torch_fwdad.engine.upstream import resolve_overload
from torch_fwdad.testing import plain_pytorch, sample_registry
from torch_fwdad.testing.checks import as_function
from torch_fwdad.testing.samples.backward_ops import (
    UPSTREAM_CASES,
    batch_norm_no_running_stats,
    layer_norm_affine,
)
from torch_fwdad.testing.second_order import OpsSeen, fd_hessian, hvp_columns, split

DT = torch.float64
OURS = {entry.name for entry in ENTRIES}
INSTALLED = {rule.name for rule in torch_fwdad.registered_ops()}
SOURCES = sample_registry()


def _fixed(*shape, seed):
    return torch.randn(*shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


HESSIAN = {"hessian": lambda f, theta: torch.func.hessian(f)(theta), "hvp": hvp_columns}


def _check_hessian(f, theta, backward_op, via="hessian"):
    # Seen in a plain pass: under forward AD a decomposed op shows only its pieces.
    with OpsSeen() as seen:
        torch.func.grad(f)(theta)
    assert backward_op in seen.names, f"f and its reverse pass do not call {backward_op}; it calls {sorted(seen.names)}"
    torch.testing.assert_close(HESSIAN[via](f, theta), fd_hessian(f, theta), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- covered upstream
# The cases live with the samples (the coverage report measures them too): one place.

# torch.func.hessian (jacfwd over jacrev) is wrong upstream where jacrev's vmap meets the
# training-mode backward of native_layer_norm / native_batch_norm (their batching rule,
# pytorch/functorch#534; batch_norm_backward is right). One Hessian-vector product at a
# time (jvp over grad, no vmap) is right, so the forward-mode side is fine. Not fixable
# from the Autograd key: vmap decomposes the op before forward AD sees it.
_NORM_BATCHING = pytest.mark.xfail(strict=True, reason=(
    "upstream: jacrev's vmap over the training-mode norm backward gives wrong second derivatives "
    "(pytorch/functorch#534); HVPs without vmap are right"))

_HESSIAN_MARKS = {
    layer_norm_affine: (_NORM_BATCHING,),
    batch_norm_no_running_stats: (_NORM_BATCHING,),
}


def _upstream_params():
    for op, f, size in UPSTREAM_CASES:
        hessian_marks = _HESSIAN_MARKS.get(f, ())
        yield pytest.param(op, f, size, "hvp", id=f"{f.__name__}-hvp")
        yield pytest.param(op, f, size, "hessian", id=f"{f.__name__}-hessian", marks=hessian_marks)


@pytest.mark.parametrize("backward_op, f, size, via", _upstream_params())
def test_upstream_decomposition_covers(backward_op, f, size, via):
    assert f"aten::{backward_op}" not in OURS, "covered upstream: derivatives.yaml must not add a formula"
    with plain_pytorch():
        _check_hessian(f, _fixed(size, seed=0), backward_op, via)


# ---------------------------------------------------------------- added by derivatives.yaml

SIGNS = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0, -1.0], dtype=DT)


def soft_margin(theta):
    return F.soft_margin_loss(theta * theta.flip(0), SIGNS)


def huber(theta):
    prediction, target = split(theta, (3,), (3,))
    return F.huber_loss(torch.sin(prediction) * 2, target, delta=0.7, reduction="sum")


MASK = torch.rand(2, 3, generator=torch.Generator().manual_seed(3)) > 0.4


def dropout_backward_called(theta):
    # native_dropout's backward calls native_dropout_backward only with grad mode off
    # (with create_graph it multiplies by the mask itself), so a Hessian never reaches it
    # through native_dropout: call it as a function here.
    return torch.tanh(torch.ops.aten.native_dropout_backward(theta.reshape(2, 3).sin(), MASK, 1 / 0.6)).pow(3).sum()


def cdist_p(p):
    def f(theta):
        x1, x2 = split(theta, (3, 2), (2, 2))
        return (torch.cdist(x1, x2, p=p, compute_mode="donot_use_mm_for_euclid_dist") ** 1.5).sum()
    f.__name__ = f"cdist_p{p}"
    return f


def pdist_p(p):
    def f(theta):
        return torch.tanh(torch.pdist(theta.reshape(4, 2), p=p)).sum()
    f.__name__ = f"pdist_p{p}"
    return f


MARGIN_TARGET = torch.tensor([0, 2, 1])
MARGIN_WEIGHT = torch.tensor([0.5, 2.0, 1.0, 1.5], dtype=DT)
MULTILABEL_TARGET = torch.tensor([[0, 3, -1, 1], [2, 2, -1, -1], [-1, 1, 1, 1]])


def multi_margin(p, weight=None):
    def f(theta):
        scores = 3 * torch.sin(theta.reshape(3, 4))  # curvature of its own under the hinges
        return F.multi_margin_loss(scores, MARGIN_TARGET, p=p, margin=0.8, weight=weight)
    f.__name__ = f"multi_margin_p{p}" + ("_weight" if weight is not None else "")
    return f


def multilabel_margin(theta):
    return F.multilabel_margin_loss(3 * torch.sin(theta.reshape(3, 4)), MULTILABEL_TARGET, reduction="sum")


def hardsigmoid_chain(theta):
    # sin keeps the curvature nonzero inside the ramp; 3·theta reaches both flat sides
    return torch.sin(F.hardsigmoid(3 * theta)).sum()


SEGMENT_LENGTHS = torch.tensor([2, 0, 3, 3])


def segment(reduce):
    def f(theta):
        data = torch.sin(theta) + 0.5 * theta
        return torch.tanh(torch.segment_reduce(data, reduce, lengths=SEGMENT_LENGTHS, initial=1.5)).sum()
    f.__name__ = f"segment_{reduce}"
    return f


CTC_TARGETS = torch.tensor([[1, 2, 1], [3, 3, 0]])


def ctc(reduction, lengths_type=list):
    def f(theta):
        log_probs = F.log_softmax(theta.reshape(5, 2, 4), -1)
        loss = F.ctc_loss(log_probs, CTC_TARGETS, lengths_type([5, 4]), lengths_type([3, 2]), reduction=reduction)
        return loss.pow(2).sum() if reduction == "none" else loss
    f.__name__ = f"ctc_{reduction}_{lengths_type.__name__}"
    return f


def _needs(forward_op):
    """The Hessian also needs the forward op's own JVP, another entry of derivatives.yaml."""
    return pytest.mark.xfail(f"aten::{forward_op}" not in INSTALLED, strict=True,
                             reason=f"needs the {forward_op} entry (the forward pass runs under forward AD too)")


OUR_CASES = [
    pytest.param("soft_margin_loss_backward", soft_margin, 6, "hessian", id="soft_margin_loss"),
    pytest.param("huber_loss_backward", huber, 6, "hessian", id="huber_loss"),
    pytest.param("native_dropout_backward", dropout_backward_called, 6, "hessian", id="dropout_backward"),
    *(pytest.param("_cdist_backward", cdist_p(p), 10, "hessian", id=f"cdist_p{p}", marks=_needs("_cdist_forward")) for p in (1.5, 2.0, 3.0)),
    *(pytest.param("multi_margin_loss_backward", multi_margin(p, w), 12, via, id=f"multi_margin_p{p}{'_weight' if w is not None else ''}-{via}")
      for p in (1, 2) for w in (None, MARGIN_WEIGHT) for via in ("hessian", "hvp")),
    pytest.param("multilabel_margin_loss_backward", multilabel_margin, 12, "hessian", id="multilabel_margin"),
    pytest.param("hardsigmoid_backward", hardsigmoid_chain, 6, "hessian", id="hardsigmoid"),
    *(pytest.param("_ctc_loss_backward", ctc(reduction, kind), 40, via, id=f"ctc_{reduction}_{kind.__name__}-{via}")
      for reduction, kind, via in (("sum", list, "hessian"), ("mean", torch.tensor, "hvp"), ("none", torch.tensor, "hessian"))),
    *(pytest.param("_segment_reduce_backward", segment(reduce), 8, "hessian", id=f"segment_{reduce}")
      for reduce in ("sum", "mean", "max", "min", "prod")),
    *(pytest.param("_pdist_backward", pdist_p(p), 8, "hessian", id=f"pdist_p{p}", marks=_needs("_pdist_forward")) for p in (0.5, 2.0, 3.0)),
]


@pytest.mark.parametrize("backward_op, f, size, via", OUR_CASES)
def test_hessian_through_our_formula(backward_op, f, size, via):
    assert f"aten::{backward_op}" in INSTALLED
    _check_hessian(f, _fixed(size, seed=0), backward_op, via)


def test_huber_kink_follows_double_backward():
    """At |x - y| == delta the curvature is PyTorch's double-backward value, 0."""
    x = torch.tensor([0.5, -1.0, 2.0], dtype=DT)
    y = torch.tensor([-0.5, 0.0, 1.5], dtype=DT)  # |x - y| = 1, 1, 0.5
    grad = torch.tensor(1.0, dtype=DT)

    def backward(x):
        return torch.ops.aten.huber_loss_backward(grad, x, y, 2, 1.0)

    jacobian_forward = torch.func.jacfwd(backward)(x)
    jacobian_reverse = torch.autograd.functional.jacobian(backward, x)
    assert torch.equal(jacobian_forward, jacobian_reverse)
    assert torch.equal(jacobian_forward.diagonal(), torch.tensor([0.0, 0.0, 1.0], dtype=DT))


def _coincident_points():
    x1 = torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=DT)
    x2 = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, -0.5]], dtype=DT)  # x2[0] == x1[0]
    return x1, x2


@pytest.mark.parametrize("p", [0.5, 1.5, 2.0, 3.0])
def test_distance_backward_tangent_at_zero_distance(p):
    """A pair at distance 0 contributes 0 to the kernel's gradient; its tangent is 0 too, never NaN."""
    x1, x2 = _coincident_points()
    dist = torch.cdist(x1, x2, p=p)
    grad = torch.zeros_like(dist)
    grad[0, 0] = 1.0  # only the coincident pair
    tangents = [torch.randn_like(t) for t in (grad, x1, x2, dist)]
    tangents[0] = tangents[0] * (grad != 0)
    _, tangent = torch.func.jvp(lambda *a: torch.ops.aten._cdist_backward(a[0], a[1], a[2], p, a[3]), (grad, x1, x2, dist), tuple(tangents))
    assert torch.equal(tangent, torch.zeros_like(tangent))


@pytest.mark.parametrize("p", [0.5, 2.0, float("inf")])
def test_distance_backward_primal_unchanged(p):
    """Reverse mode cannot check these two ops (their backward is not implemented): compare primals here."""
    x1, x2 = _coincident_points()
    x = torch.cat([x1, x2])
    dist, pdist = torch.cdist(x1, x2, p=p), torch.pdist(x, p=p)
    grad, pgrad = torch.randn_like(dist), torch.randn_like(pdist)
    plain = (torch.ops.aten._cdist_backward(grad, x1, x2, p, dist), torch.ops.aten._pdist_backward(pgrad, x, p, pdist))
    with fwAD.dual_level():
        dual = (
            torch.ops.aten._cdist_backward(fwAD.make_dual(grad, torch.ones_like(grad)), fwAD.make_dual(x1, torch.ones_like(x1)), x2, p, dist),
            torch.ops.aten._pdist_backward(pgrad, fwAD.make_dual(x, torch.ones_like(x)), p, fwAD.make_dual(pdist, torch.ones_like(pdist))),
        )
        primals = [fwAD.unpack_dual(out).primal for out in dual]
    for ours, theirs in zip(primals, plain):
        assert torch.equal(ours, theirs)


# Backward ops without a reverse mode of their own: the matrix's `unchanged` check cannot
# run (it differentiates in reverse), so the primal is compared here, sample by sample.
NO_REVERSE_MODE = ["multi_margin_loss_backward", "multilabel_margin_loss_backward", "_segment_reduce_backward",
                   "hardsigmoid_backward"]


def _primal_with_tangents(op, sample):
    fn, inputs = as_function(op, sample)
    with fwAD.dual_level():
        outputs = fn(*[fwAD.make_dual(x, torch.randn_like(x)) for x in inputs])
        return [fwAD.unpack_dual(o).primal for o in outputs]


@pytest.mark.parametrize("name", NO_REVERSE_MODE)
def test_backward_op_primal_unchanged(name):
    op = resolve_overload(f"aten::{name}")
    for sample in SOURCES[f"aten::{name}"].generate(DT, "cpu"):
        ours = _primal_with_tangents(op, sample)
        with plain_pytorch():
            fn, inputs = as_function(op, sample)
            plain = fn(*inputs)
        for got, expected in zip(ours, plain):
            assert torch.equal(got, expected), sample.desc


@pytest.mark.parametrize("zeros", [1, 2, 3])
def test_segment_prod_hessian_at_zeros(zeros):
    """Hessians at a point with 1, 2 or 3 zeros in one segment: the products of the others
    (and their tangents) are exact there; finite differences of the gradient judge them,
    since the product is a polynomial."""
    f = segment("prod")
    theta = _fixed(8, seed=1)
    theta[2:2 + zeros] = 0  # segment 2 holds entries 2..4
    _check_hessian(f, theta, "_segment_reduce_backward")


# ---------------------------------------------------------------- OpInfo, jvp of vjp
# The OpInfo entries whose forward-over-reverse needed the backward-op rules above (found
# by sweeping op_db for torch.func.jvp of torch.func.vjp failing while first order works):
# each sample's jvp-of-vjp against central differences of the vjp.

OPINFO_SECOND_ORDER = [
    ("nn.functional.multi_margin_loss", ""), ("nn.functional.multilabel_margin_loss", ""),
    ("nn.functional.hardsigmoid", ""), ("nn.functional.ctc_loss", ""),
    ("_segment_reduce", "lengths"), ("_segment_reduce", "offsets"),
    ("index_reduce", "prod"), ("scatter_reduce", "prod"),
]


def _opinfo(name, variant):
    from torch.testing._internal.common_methods_invocations import op_db

    return next(op for op in op_db if op.name == name and op.variant_test_name == variant)


def _vjp_of_first_input(op, sample, cotangent_seed=0):
    def f(x):
        return op.gradcheck_wrapper(op.get_op(), x, *sample.args, **sample.kwargs)

    x = sample.input.detach()
    out = f(x)
    cotangent = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(cotangent_seed))
    return lambda x: torch.func.vjp(f, x)[1](cotangent)[0], x


@pytest.mark.slow
@pytest.mark.parametrize("name, variant", OPINFO_SECOND_ORDER, ids=lambda v: v or "-")
def test_opinfo_jvp_of_vjp_matches_finite_differences(name, variant):
    op = _opinfo(name, variant)
    samples = list(op.sample_inputs("cpu", DT, requires_grad=True))
    checked = 0
    for sample in samples[:: max(1, len(samples) // 6)]:
        vjp, x = _vjp_of_first_input(op, sample)
        if not x.numel():
            continue
        direction = torch.randn(x.shape, dtype=DT, generator=torch.Generator().manual_seed(1))
        _, got = torch.func.jvp(vjp, (x,), (direction,))
        eps = 1e-6
        expected = (vjp(x + eps * direction) - vjp(x - eps * direction)) / (2 * eps)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
        checked += 1
    assert checked > 0


# ---------------------------------------------------------------- prod reductions, second order
# PyTorch's backward of index_reduce / scatter_reduce (prod) reads the result, whose
# tangent is torch_fwdad's: Hessians by forward-over-reverse against PyTorch's own double
# backward (reverse-over-reverse) where it has one (no zero), and against finite
# differences of the gradient with zeros (one per group, and two in one group).

PROD_INDEX = torch.tensor([0, 2, 0, 4])
PROD_SCATTER_INDEX = torch.tensor([[0, 1, 0], [0, 2, 2], [4, 1, 0], [0, 2, 4]])


def prod_reduction(kind, include_self):
    def f(theta):
        self_, source = split(theta, (5, 3), (4, 3))
        if kind == "index_reduce":
            out = self_.index_reduce(0, PROD_INDEX, source, "prod", include_self=include_self)
        else:
            out = self_.scatter_reduce(0, PROD_SCATTER_INDEX, source, "prod", include_self=include_self)
        return torch.tanh(out).sum()
    return f


@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta:UserWarning")
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("kind", ["index_reduce", "scatter_reduce"])
def test_prod_reduction_hessian_matches_double_backward(kind, include_self):
    f, theta = prod_reduction(kind, include_self), _fixed(27, seed=4)
    forward_over_reverse = torch.func.hessian(f)(theta)
    torch.testing.assert_close(forward_over_reverse, torch.autograd.functional.hessian(f, theta))
    torch.testing.assert_close(forward_over_reverse, fd_hessian(f, theta), atol=1e-5, rtol=1e-4)


_TWO_ZEROS_UPSTREAM = pytest.mark.xfail(strict=True, reason=(
    "upstream: PyTorch's prod backward (index_reduce_backward / scatter_reduce_backward) guards "
    "two zeros in one group with a DelayedError node, which only raises under reverse mode; "
    "forward mode goes through its masked formula, whose derivative there is 0 (the mixed second "
    "derivative of the two zeros is lost). torch_fwdad's forward rule is exact there (the check "
    "matrix's 'prod zeros' samples); the backward formula is PyTorch's, so its reverse mode stays"))


@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta:UserWarning")
@pytest.mark.parametrize("zeros", [
    pytest.param((15 + 3, 0), id="one per group"),
    pytest.param((15 + 1, 15 + 7), id="two in one group", marks=_TWO_ZEROS_UPSTREAM),
])
@pytest.mark.parametrize("kind", ["index_reduce", "scatter_reduce"])
def test_prod_reduction_hessian_at_zeros(kind, zeros):
    # theta[:15] is self (5, 3), theta[15:] the source (4, 3): 15 + 3 is source (1, 0), 0 is
    # self (0, 0); 15 + 1 and 15 + 7 are source (0, 1) and (2, 1), both sent to row 0
    f, theta = prod_reduction(kind, True), _fixed(27, seed=4)
    theta[list(zeros)] = 0
    torch.testing.assert_close(hvp_columns(f, theta), fd_hessian(f, theta), atol=1e-5, rtol=1e-4)
