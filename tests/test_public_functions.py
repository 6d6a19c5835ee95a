"""Distance, Cholesky, margin-loss and indexed-reduction formulas through the public functions users call.

Forward mode through torch.cdist, F.pdist, torch.cholesky, F.multi_margin_loss,
F.multilabel_margin_loss, Tensor.index_reduce and scatter_reduce(prod) matches central
finite differences under torch.autograd.forward_ad and torch.func.jvp, and
torch_fwdad.disable() brings PyTorch's own behaviour back (its NotImplementedError, or
for scatter_reduce prod its silently wrong tangent).
"""

import contextlib
import math

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

from torch_fwdad.testing import plain_pytorch

F64 = torch.float64
EPS = 1e-6
TOL = dict(atol=1e-5, rtol=1e-3)

pytestmark = pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta:UserWarning")


def _randn(*shape, generator):
    return torch.randn(*shape, dtype=F64, generator=generator)


def _spd(n, generator):
    a = _randn(n, n, generator=generator)
    return a @ a.mT + n * torch.eye(n, dtype=F64)


def _case_inputs(name):
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    x1, x2 = _randn(4, 3, generator=g), _randn(5, 3, generator=g)
    return g, x1, x2


def _cases():
    """name -> (fn of the differentiable inputs, inputs, the operator forward mode used to lack)."""
    cases = {}
    for p in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, math.inf):
        name = f"cdist p={p}"
        _, x1, x2 = _case_inputs(name)
        cases[name] = (lambda a, b, p=p: torch.cdist(a, b, p=p), (x1, x2), "_cdist_forward")
    for mode, op in (("use_mm_for_euclid_dist", "_euclidean_dist"), ("donot_use_mm_for_euclid_dist", "_cdist_forward"),
                     ("use_mm_for_euclid_dist_if_necessary", "_cdist_forward")):
        name = f"cdist {mode}"
        g, _, _ = _case_inputs(name)
        cases[name] = (lambda a, b, mode=mode: torch.cdist(a, b, compute_mode=mode),
                       (_randn(2, 1, 4, 3, generator=g), _randn(3, 5, 3, generator=g)), op)
    g, _, _ = _case_inputs("cdist 30 rows")
    cases["cdist 30 rows (matmul path)"] = (torch.cdist, (_randn(30, 3, generator=g), _randn(4, 3, generator=g)), "_euclidean_dist")
    for p in (0.5, 1.0, 2.0, math.inf):
        name = f"pdist p={p}"
        _, x1, _ = _case_inputs(name)
        cases[name] = (lambda a, p=p: F.pdist(a, p=p), (x1,), "_pdist_forward")
    for upper in (False, True):
        name = f"cholesky upper={upper}"
        g, _, _ = _case_inputs(name)
        cases[name] = (lambda a, upper=upper: torch.cholesky(a @ a.mT + 4 * torch.eye(4, dtype=F64), upper=upper),
                       (_randn(4, 4, generator=g),), "cholesky")
    target = torch.tensor([0, 2, 1, 3])
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=F64)
    for p in (1, 2):
        for reduction in ("none", "mean", "sum"):
            name = f"multi_margin_loss p={p} {reduction}"
            g, _, _ = _case_inputs(name)
            cases[name] = (lambda x, p=p, r=reduction: F.multi_margin_loss(x, target, p=p, margin=0.8, weight=weight, reduction=r),
                           (3 * _randn(4, 4, generator=g),), "multi_margin_loss")
    labels = torch.tensor([[0, 3, -1, 1], [2, -1, 0, 0], [1, 2, 3, -1], [-1, 0, 0, 0]])
    for reduction in ("none", "mean", "sum"):
        name = f"multilabel_margin_loss {reduction}"
        g, _, _ = _case_inputs(name)
        cases[name] = (lambda x, r=reduction: F.multilabel_margin_loss(x, labels, reduction=r),
                       (3 * _randn(4, 4, generator=g),), "multilabel_margin_loss_forward")
    index = torch.tensor([0, 2, 0, 4])
    for reduce in ("prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            name = f"index_reduce {reduce} include_self={include_self}"
            g, _, _ = _case_inputs(name)
            self_, source = _randn(5, 3, generator=g), _randn(4, 3, generator=g)
            if reduce == "prod":
                self_[0, 0] = source[0, 1] = source[2, 1] = 0.0  # zeros, two sharing one group
            cases[name] = (lambda s, src, r=reduce, i=include_self: s.index_reduce(0, index, src, r, include_self=i),
                           (self_, source), "index_reduce")
    scatter_index = torch.tensor([[0, 1, 0], [0, 2, 2], [4, 1, 0], [0, 2, 4]])
    for include_self in (True, False):
        name = f"scatter_reduce prod include_self={include_self}"
        g, _, _ = _case_inputs(name)
        self_, src = _randn(5, 3, generator=g), _randn(4, 3, generator=g)
        self_[2, 2] = src[0, 0] = src[1, 0] = src[1, 2] = 0.0
        cases[name] = (lambda s, src, i=include_self: s.scatter_reduce(0, scatter_index, src, "prod", include_self=i),
                       (self_, src), None)
    return cases


CASES = _cases()


def _tangents(inputs, seed=1):
    g = torch.Generator().manual_seed(seed)
    return tuple(_randn(*x.shape, generator=g) for x in inputs)


def _finite_difference(fn, inputs, tangents):
    plus = fn(*(x + EPS * t for x, t in zip(inputs, tangents)))
    minus = fn(*(x - EPS * t for x, t in zip(inputs, tangents)))
    return (plus - minus) / (2 * EPS)


def _forward_ad_tangent(fn, inputs, tangents):
    with fwAD.dual_level():
        out = fn(*(fwAD.make_dual(x, t) for x, t in zip(inputs, tangents)))
        return fwAD.unpack_dual(out).tangent


@pytest.mark.parametrize("name", list(CASES))
def test_forward_ad_matches_finite_differences(name):
    fn, inputs, _ = CASES[name]
    tangents = _tangents(inputs)
    expected = _finite_difference(fn, inputs, tangents)
    torch.testing.assert_close(_forward_ad_tangent(fn, inputs, tangents), expected, **TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_func_jvp_matches_finite_differences(name):
    fn, inputs, _ = CASES[name]
    tangents = _tangents(inputs)
    expected = _finite_difference(fn, inputs, tangents)
    primal, tangent = torch.func.jvp(fn, inputs, tangents)
    torch.testing.assert_close(primal, fn(*inputs), rtol=0, atol=0)
    torch.testing.assert_close(tangent, expected, **TOL)


@contextlib.contextmanager
def _disabled():
    with plain_pytorch():
        yield


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[2] is not None])
def test_disable_brings_back_pytorchs_error(name):
    fn, inputs, op = CASES[name]
    tangents = _tangents(inputs)
    message = f"Trying to use forward AD with {op} that does not support it"
    with _disabled():
        with pytest.raises(NotImplementedError, match=message):
            _forward_ad_tangent(fn, inputs, tangents)
        with pytest.raises(NotImplementedError, match=message):
            torch.func.jvp(fn, inputs, tangents)
    assert _forward_ad_tangent(fn, inputs, tangents) is not None  # enabled again


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_prod_upstream_tangent_is_wrong_and_ours_is_right(include_self):
    fn, inputs, _ = CASES[f"scatter_reduce prod include_self={include_self}"]
    tangents = _tangents(inputs)
    expected = _finite_difference(fn, inputs, tangents)
    assert expected.abs().max() > 1e-3
    with _disabled():
        upstream = _forward_ad_tangent(fn, inputs, tangents)
        _, upstream_jvp = torch.func.jvp(fn, inputs, tangents)
    assert upstream is None  # no tangent at all: a silent zero
    assert torch.count_nonzero(upstream_jvp) == 0
    torch.testing.assert_close(_forward_ad_tangent(fn, inputs, tangents), expected, **TOL)


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dual", ["self", "src", "both"])
def test_scatter_reduce_other_reductions_keep_upstreams_tangents(reduce, include_self, dual):
    g = torch.Generator().manual_seed(3)
    self_, src = _randn(5, 3, generator=g), _randn(4, 3, generator=g)
    src[3, 1] = src[1, 1]  # a tie between two src elements sent to row 2
    index = torch.tensor([[0, 1, 0], [0, 2, 2], [4, 1, 0], [0, 2, 4]])
    self_t, src_t = _tangents((self_, src))

    def tangent():
        with fwAD.dual_level():
            s = fwAD.make_dual(self_, self_t) if dual in ("self", "both") else self_
            x = fwAD.make_dual(src, src_t) if dual in ("src", "both") else src
            out = fwAD.unpack_dual(s.scatter_reduce(0, index, x, reduce, include_self=include_self)).tangent
        return torch.zeros(5, 3, dtype=F64) if out is None else out

    ours = tangent()
    with _disabled():
        upstream = tangent()
    assert torch.equal(ours, upstream)


def test_scatter_reduce_legacy_max_raises_like_reverse_mode():
    self_, src = torch.zeros(2, dtype=F64), torch.tensor([3.0, -1.0, 5.0], dtype=F64)
    index = torch.tensor([0, 0, 1])
    with pytest.raises(RuntimeError, match="Expected 'reduce' to be one of"):
        torch.autograd.grad(self_.scatter_reduce(0, index, src.requires_grad_(), "max").sum(), src)
    with pytest.raises(RuntimeError, match="Expected 'reduce' to be one of"):
        torch.func.jvp(lambda x: self_.scatter_reduce(0, index, x, "max"), (src.detach(),), (torch.ones(3, dtype=F64),))


def test_multi_margin_loss_ignores_a_tangent_on_weight_like_nll_loss():
    x, target, weight = torch.randn(3, 4, dtype=F64), torch.tensor([0, 1, 3]), torch.rand(4, dtype=F64)
    with fwAD.dual_level():
        dual_weight = fwAD.make_dual(weight, torch.ones_like(weight))
        nll = fwAD.unpack_dual(F.nll_loss(x, target, weight=dual_weight)).tangent
        margin = fwAD.unpack_dual(F.multi_margin_loss(x, target, weight=dual_weight)).tangent
    assert nll is None and margin is None


def test_multilabel_is_target_carries_no_tangent():
    x = torch.randn(2, 4, dtype=F64)
    target = torch.tensor([[0, 3, -1, 1], [2, -1, 0, 0]])
    with fwAD.dual_level():
        output, is_target = torch.ops.aten.multilabel_margin_loss_forward(fwAD.make_dual(x, torch.ones_like(x)), target, 1)
        assert fwAD.unpack_dual(output).tangent is not None
        assert fwAD.unpack_dual(is_target).tangent is None


def test_cdist_jvp_composes_with_vmap_and_jacfwd():
    g = torch.Generator().manual_seed(5)
    x1, x2 = _randn(3, 2, generator=g), _randn(4, 2, generator=g)
    for p in (1.0, 2.0, 3.0):
        jacobian = torch.func.jacfwd(lambda a: torch.cdist(a, x2, p=p))(x1)
        reverse = torch.autograd.functional.jacobian(lambda a: torch.cdist(a, x2, p=p), x1)
        torch.testing.assert_close(jacobian, reverse)
        tangents = _randn(5, 3, 2, generator=g)
        batched = torch.func.vmap(lambda t: torch.func.jvp(lambda a: torch.cdist(a, x2, p=p), (x1,), (t,))[1])(tangents)
        one_by_one = torch.stack([torch.func.jvp(lambda a: torch.cdist(a, x2, p=p), (x1,), (t,))[1] for t in tangents])
        torch.testing.assert_close(batched, one_by_one)


@pytest.mark.parametrize("p", [0.5, 1.0, 1.5, 2.0, 3.0, math.inf])
def test_distance_tangents_have_finite_derivatives_at_zero_distance(p):
    """Reverse over forward through a zero distance: the masked branches must not leak NaN."""
    g = torch.Generator().manual_seed(7)
    x1, x2, t = _randn(3, 4, generator=g), _randn(5, 4, generator=g), _randn(3, 4, generator=g)
    x1[0] = x2[0]

    def cdist_tangent(a):
        return torch.func.jvp(lambda b: torch.cdist(b, x2, p=p, compute_mode="donot_use_mm_for_euclid_dist"), (a,), (t,))[1].sum()

    def pdist_tangent(a):
        return torch.func.jvp(lambda b: F.pdist(b, p=p), (a,), (t,))[1].sum()

    assert torch.isfinite(torch.func.grad(cdist_tangent)(x1)).all()
    assert torch.isfinite(torch.func.grad(pdist_tangent)(torch.stack([x1[0], x1[1], x1[0]]))).all()  # rows 0 and 2 coincide
