"""Reverse mode through a forward-mode tangent: the gradient of a JVP-based objective.

Plain PyTorch (2.13) gets this silently wrong for the ops whose forward formula reads an
output whose own gradient PyTorch drops (native_layer_norm's mean and rstd, batch norm's
saved statistics in training, the LU that det, slogdet and solve factor A into), and for
linalg.householder_product, and NaN for linalg.eigh's eigenvectors. torch_fwdad's `when: outer_derivative` entries replace those formulas exactly there.
Through forward_ad on an input requiring grad, plain PyTorch raises for the softmax family
(softmax, log_softmax, logsumexp, cross_entropy, attention's math path: an in-place update
of what exp saved) and the 1-norm, alone or inside renorm and dist (of what sgn saved), and any outer derivative raises for glu and hardsigmoid (their tangents
are kernels without derivatives); logcumsumexp's first-order tangent is itself wrong where
its input spreads widely along the dim.

Each op is checked three ways, the directional derivative <∇h, d> of h(x) = <w, J(x) v>
against central differences of h, which only needs first-order tangents (upstream's,
exact in value):
  - reverse mode beneath torch.func.jvp (inputs requiring grad, .backward()-style);
  - forward_ad.make_dual on inputs requiring grad;
  - torch.func.grad over torch.func.jvp.
Without an outer derivative the tangent must stay bitwise plain PyTorch's.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
import torch.nn.functional as F

from torch_fwdad.testing import plain_pytorch

DT = torch.float64
EPS = 1e-6
TOL = dict(rtol=1e-6, atol=1e-7)


def _random(*shape, seed):
    return torch.randn(shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


def _matrix(n, seed, batch=()):
    return _random(*batch, n, n, seed=seed) + 3 * torch.eye(n, dtype=DT)


def _running_stats(channels):
    return torch.zeros(channels, dtype=DT), torch.ones(channels, dtype=DT)


# name -> (f, inputs): f(*inputs) is one tensor
CASES = {
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (5,), w, b), (_random(3, 4, 5, seed=0), _random(5, seed=1), _random(5, seed=2))),
    "layer_norm_2d": (lambda x: F.layer_norm(x, (3, 4)), (_random(2, 3, 4, seed=3),)),
    "batch_norm_training": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                            (_random(4, 3, 2, seed=4), _random(3, seed=5), _random(3, seed=6))),
    "batch_norm_training_running_stats": (lambda x: F.batch_norm(x, *_running_stats(3), training=True),
                                          (_random(4, 3, 2, 2, seed=7),)),
    "instance_norm": (lambda x: F.instance_norm(x), (_random(2, 3, 5, seed=8),)),
    "native_batch_norm_legit": (lambda x, w: torch.ops.aten._native_batch_norm_legit(x, w, None, *_running_stats(3), True, 0.1, 1e-5)[0],
                                (_random(4, 3, 2, seed=9), _random(3, seed=10))),
    "native_batch_norm_legit_no_stats": (lambda x: torch.ops.aten._native_batch_norm_legit.no_stats(x, None, None, True, 0.1, 1e-5)[0],
                                         (_random(4, 3, 2, seed=11),)),
    "batch_norm_with_update": (lambda x, w: torch.ops.aten._batch_norm_with_update(x, w, None, *_running_stats(3), 0.1, 1e-5)[0],
                               (_random(4, 3, 2, seed=12), _random(3, seed=13))),
    "det": (torch.linalg.det, (_matrix(4, seed=14, batch=(2,)),)),
    "slogdet": (lambda a: torch.linalg.slogdet(a).logabsdet, (_matrix(4, seed=15),)),
    "logdet": (torch.logdet, (_matrix(3, seed=16) @ _matrix(3, seed=16).mT,)),
    "solve": (torch.linalg.solve, (_matrix(4, seed=17), _random(4, 2, seed=18))),
    "solve_right": (lambda a, b: torch.linalg.solve(a, b, left=False), (_matrix(3, seed=19), _random(2, 3, seed=20))),
    "solve_vector": (torch.linalg.solve, (_matrix(3, seed=21, batch=(2,)), _random(2, 3, seed=22))),
    "eigh": (lambda a: torch.linalg.eigh(a + a.mT).eigenvectors, (_random(4, 4, seed=25),)),
    "householder_product": (torch.linalg.householder_product, (_random(5, 3, seed=23), _random(2, seed=24))),
}

def _math_attention(q, k, v):
    # the math path decomposes into _safe_softmax (nothing requiring grad would take the
    # fused CPU kernel, which plain PyTorch cannot differentiate forward)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v)


# Plain PyTorch raises for these through forward_ad (make_dual) on inputs requiring grad (its
# formulas update an output exp or sgn saved, in place), and gives their tangent, and its
# gradient beneath torch.func, bit for bit as torch_fwdad does.
OUT_OF_PLACE_CASES = {
    "softmax": (lambda x: torch.softmax(x, 1), (_random(3, 5, 2, seed=40),)),
    "log_softmax": (lambda x: torch.log_softmax(x, -1), (_random(4, 6, seed=41),)),
    "logsumexp": (lambda x: torch.logsumexp(x, (0, 2), keepdim=True), (_random(3, 4, 2, seed=42),)),
    "safe_softmax": (lambda x: torch.ops.aten._safe_softmax(x, -1), (_random(3, 5, seed=43),)),
    "cross_entropy": (lambda x: F.cross_entropy(x, torch.tensor([2, 0, 4])), (_random(3, 5, seed=44),)),
    "sdpa_math": (lambda q, k, v: _math_attention(q, k, v),
                  (_random(1, 2, 4, 3, seed=45), _random(1, 2, 5, 3, seed=46), _random(1, 2, 5, 3, seed=47))),
    "vector_norm_1": (lambda x: torch.linalg.vector_norm(x, 1, dim=-1), (_random(3, 5, seed=53),)),
    "normalize_1": (lambda x: F.normalize(x, p=1, dim=0), (_random(4, 3, seed=54),)),
    # rows 0, 1 and 3 have 1-norms over maxnorm (4.7, 2.4, 2.3), row 2 under it (1.3)
    "renorm_1": (lambda x: torch.renorm(x, 1, 0, 2.0), (_random(4, 3, seed=55),)),
    "renorm_1_in_place": (lambda x: (x * 1).renorm_(1, 0, 2.0), (_random(4, 3, seed=55),)),
    "dist_1": (lambda x, y: torch.dist(x, y, 1), (_random(3, 4, seed=56), _random(4, seed=57))),
}
CASES.update(OUT_OF_PLACE_CASES)
CASES.update({
    # any outer derivative raises in plain PyTorch
    "glu": (lambda x: F.glu(x, 1), (_random(3, 4, seed=48),)),
    "hardsigmoid_times_x": (lambda x: F.hardsigmoid(x) * x, (_random(4, 5, seed=49) * 2,)),
    # plain PyTorch's tangent (not only its gradient) is wrong here: see below
    "logcumsumexp_spread": (lambda x: torch.logcumsumexp(x, -1), (_random(3, 6, seed=50) * 15,)),
})
ALWAYS_CORRECTED = {"logcumsumexp_spread"}  # the tangent itself differs from plain PyTorch's


def _tangent_function(f, tangents):
    return lambda *xs: torch.func.jvp(f, xs, tangents)[1]


def _case(name):
    f, inputs = CASES[name]
    tangents = tuple(_random(*x.shape, seed=100 + i) for i, x in enumerate(inputs))
    weight = _random(*f(*inputs).shape, seed=200)
    directions = tuple(_random(*x.shape, seed=300 + i) for i, x in enumerate(inputs))
    return f, inputs, tangents, weight, directions


def _finite_difference(f, inputs, tangents, weight, directions):
    """Central differences of h(x) = <w, J(x) v> along `directions` (first-order tangents only)."""
    tangent = _tangent_function(f, tangents)
    with torch.no_grad():
        plus = tangent(*[x + EPS * d for x, d in zip(inputs, directions)])
        minus = tangent(*[x - EPS * d for x, d in zip(inputs, directions)])
    return ((plus - minus) * weight).sum() / (2 * EPS)


def _gradient_beneath_jvp(f, inputs, tangents, weight):
    xs = [x.detach().requires_grad_() for x in inputs]
    objective = (_tangent_function(f, tangents)(*xs) * weight).sum()
    return torch.autograd.grad(objective, xs, allow_unused=True)  # a bias does not enter the tangent


def _gradient_through_make_dual(f, inputs, tangents, weight):
    xs = [x.detach().requires_grad_() for x in inputs]
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(f(*[fwAD.make_dual(x, t) for x, t in zip(xs, tangents)])).tangent
        return torch.autograd.grad((tangent * weight).sum(), xs, allow_unused=True)


def _func_grad_over_jvp(f, inputs, tangents, weight):
    objective = lambda *xs: (_tangent_function(f, tangents)(*xs) * weight).sum()  # noqa: E731
    return torch.func.grad(objective, argnums=tuple(range(len(inputs))))(*inputs)


WAYS = {"beneath_jvp": _gradient_beneath_jvp, "make_dual": _gradient_through_make_dual,
        "func_grad_over_jvp": _func_grad_over_jvp}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", CASES)
def test_gradient_of_the_tangent(name, way):
    f, inputs, tangents, weight, directions = _case(name)
    gradients = WAYS[way](f, inputs, tangents, weight)
    along = sum((g * d).sum() for g, d in zip(gradients, directions) if g is not None)
    torch.testing.assert_close(along, _finite_difference(f, inputs, tangents, weight, directions), **TOL)


def _tangents_without_outer_derivative(f, inputs, tangents):
    """The tangent where nothing differentiates it: torch.func.jvp, jacfwd's vmap over it,
    forward_ad, and forward_ad under no_grad on inputs that require grad."""
    detached = [x.detach() for x in inputs]
    with fwAD.dual_level():
        dual = fwAD.unpack_dual(f(*[fwAD.make_dual(x, t) for x, t in zip(detached, tangents)])).tangent
    with torch.no_grad(), fwAD.dual_level():
        xs = [x.detach().requires_grad_() for x in inputs]
        no_grad = fwAD.unpack_dual(f(*[fwAD.make_dual(x, t) for x, t in zip(xs, tangents)])).tangent
    jacobian = torch.func.jacfwd(f)(*detached)
    return _tangent_function(f, tangents)(*detached), dual, no_grad, jacobian


def test_without_outer_derivative_the_tangent_is_plain_pytorchs():
    # one pass with torch_fwdad disabled for every case: disabling reinstalls every rule
    cases = {name: _case(name)[:3] for name in CASES if name not in ALWAYS_CORRECTED}
    ours = {name: _tangents_without_outer_derivative(*case) for name, case in cases.items()}
    with plain_pytorch():
        plain = {name: _tangents_without_outer_derivative(*case) for name, case in cases.items()}
    for name in cases:
        for how, got, expected in zip(("jvp", "forward_ad", "no_grad", "jacfwd"), ours[name], plain[name]):
            assert torch.equal(got, expected), f"{name}, {how}: the tangent differs from plain PyTorch's"


def test_where_plain_pytorch_works_the_out_of_place_formulas_are_its_own_bit_for_bit():
    # the out-of-place formulas are upstream's ops in upstream's order: beneath torch.func
    # (where plain PyTorch does not raise) gradients of the tangent are the same bits
    ways = ("beneath_jvp", "func_grad_over_jvp")
    cases = {name: _case(name) for name in OUT_OF_PLACE_CASES}
    ours = {(name, way): WAYS[way](*case[:4]) for name, case in cases.items() for way in ways}
    with plain_pytorch():
        plain = {(name, way): WAYS[way](*case[:4]) for name, case in cases.items() for way in ways}
    for key, gradients in ours.items():
        assert all(torch.equal(a, b) for a, b in zip(gradients, plain[key])), f"{key}: differs from plain PyTorch"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_renorm_reduced_precision_stays_plain_pytorchs(dtype):
    # there plain PyTorch takes the norm in float32 and gives a float32 tangent, which a
    # rule's tangent (matching its output) cannot: the entry leaves the call to upstream,
    # tangent and errors alike (docs/out_of_reach.md)
    x, v = (_random(4, 5, seed=58) * 2).to(dtype), _random(4, 5, seed=59).to(dtype)

    def tangent_then_gradient_error():
        with fwAD.dual_level():
            leaf = x.clone().requires_grad_()
            tangent = fwAD.unpack_dual(torch.renorm(fwAD.make_dual(leaf, v), 1, 1, 1.5)).tangent
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                torch.autograd.grad(tangent.float().sum(), leaf)
            return tangent

    with plain_pytorch():
        plain = tangent_then_gradient_error()
    ours = tangent_then_gradient_error()
    assert plain.dtype == ours.dtype == torch.float32 and torch.equal(ours, plain)


def test_logcumsumexp_tangent_is_exact_where_plain_pytorchs_is_not():
    # x = [-30, 0], v = [1, 0]: d out_0 = v_0 exactly; plain PyTorch's 1e-13 in the
    # denominator swamps exp(-30) and gives about half of it
    x, v = torch.tensor([-30.0, 0.0], dtype=DT), torch.tensor([1.0, 0.0], dtype=DT)
    jacobian = torch.func.jacrev(lambda a: torch.logcumsumexp(a, 0))(x)  # reverse mode, right upstream
    tangent = torch.func.jvp(lambda a: torch.logcumsumexp(a, 0), (x,), (v,))[1]
    torch.testing.assert_close(tangent, jacobian @ v, rtol=1e-12, atol=1e-15)  # atol: rounding of |v| = 1
    with plain_pytorch():
        plain = torch.func.jvp(lambda a: torch.logcumsumexp(a, 0), (x,), (v,))[1]
    assert abs(plain[0].item() - 1) > 0.1, "plain PyTorch got this one right: the reason for the entry is gone"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logcumsumexp_tangent_matches_the_jacobian(dtype):
    # inputs spread over ~60 along the dim, both dtypes; the Jacobian from reverse mode
    x = (_random(4, 40, seed=51) * 20).to(dtype)
    v = _random(4, 40, seed=52).to(dtype)
    tangent = torch.func.jvp(lambda a: torch.logcumsumexp(a, 1), (x,), (v,))[1]
    jacobian = torch.func.vmap(torch.func.jacrev(lambda a: torch.logcumsumexp(a, 0)))(x.double())
    expected = (jacobian @ v.double()[..., None])[..., 0].to(dtype)
    torch.testing.assert_close(tangent, expected)


# ---------------------------------------------------------------- models, end to end

def _model_gradient_check(model, x, params):
    """<∇h, d> for h(θ) = <w, ∂_θ model(x) v> by reverse mode beneath torch.func.jvp
    (parameters requiring grad), against central differences of h."""
    tangents = {k: _random(*p.shape, seed=400 + i) for i, (k, p) in enumerate(params.items())}
    directions = {k: _random(*p.shape, seed=500 + i) for i, (k, p) in enumerate(params.items())}

    def h(theta):
        _, tangent = torch.func.jvp(lambda p: torch.func.functional_call(model, p, (x,)), (theta,), (tangents,))
        return (tangent * weight).sum()

    weight = _random(*model(x).shape, seed=600)
    leaves = {k: p.detach().clone().requires_grad_() for k, p in params.items()}
    gradients = torch.autograd.grad(h(leaves), list(leaves.values()), allow_unused=True)
    along = sum((g * directions[k]).sum() for g, k in zip(gradients, leaves) if g is not None)
    with torch.no_grad():
        plus = h({k: p.detach() + EPS * directions[k] for k, p in params.items()})
        minus = h({k: p.detach() - EPS * directions[k] for k, p in params.items()})
    torch.testing.assert_close(along, (plus - minus) / (2 * EPS), **TOL)


def _encoder_layer():
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, dtype=DT)


def test_transformer_encoder_layer_train_mode():
    layer = _encoder_layer().train()
    _model_gradient_check(layer, _random(2, 5, 8, seed=30), dict(layer.named_parameters()))


@pytest.mark.parametrize("fast_path", [False, True], ids=["unfused", "fused_kernel"])
def test_transformer_encoder_layer_eval_mode(fast_path):
    """Eval mode: with the fast path on, torch.func lifts the parameters into wrappers that do not
    require grad, so the layer runs _transformer_encoder_layer_fwd (proved below)."""
    layer = _encoder_layer().eval()
    x = _random(2, 5, 8, seed=31)
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(fast_path)
    try:
        from torch_fwdad.testing.second_order import OpsSeen

        params = dict(layer.named_parameters())
        with OpsSeen() as seen:
            torch.func.jvp(lambda p: torch.func.functional_call(layer, p, (x,)), (params,), (params,))
        assert ("_transformer_encoder_layer_fwd" in seen.names) == fast_path
        _model_gradient_check(layer, x, params)
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def test_conv_batch_norm_block_train_mode():
    # torch.func refuses a module that updates its buffers in place (num_batches_tracked):
    # batch statistics without running ones, as in training under torch.func.
    torch.manual_seed(0)
    norm = lambda channels: nn.BatchNorm2d(channels, track_running_stats=False, dtype=DT)  # noqa: E731
    block = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=DT), norm(3), nn.ReLU(),
                          nn.Conv2d(3, 2, 1, dtype=DT), norm(2)).train()
    _model_gradient_check(block, _random(4, 2, 5, 5, seed=32), dict(block.named_parameters()))
