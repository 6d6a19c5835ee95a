"""Forward-over-reverse under torch.autograd.forward_ad, the way users and PyTorch write it.

Two spellings per op, each against central differences of the reverse-mode gradient:
  - torch.autograd.functional.hessian(f, x, outer_jacobian_strategy="forward-mode",
    vectorize=True): forward mode (vmapped) over autograd.grad(create_graph=True);
  - the hand-written HVP: make_dual(w.requires_grad_(), v), autograd.grad(loss, w,
    create_graph=True), unpack_dual(g).tangent.
Each test also proves the op it is about is reached (OpsSeen), and that the gradient
itself is bitwise the one plain reverse mode gives.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch_fwdad.testing.second_order import OpsSeen, fd_hessian, split
from torch_fwdad.testing import plain_pytorch

DT = torch.float64
TOL = dict(atol=1e-5, rtol=1e-4)


def _fixed(*shape, seed, low=-1.0, high=1.0, dtype=DT):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, dtype=dtype, generator=generator) * (high - low) + low


def _hand_written_hvp(f, theta, vector):
    with fwAD.dual_level():
        w = fwAD.make_dual(theta.clone().requires_grad_(), vector)
        (gradient,) = torch.autograd.grad(f(w), w, create_graph=True)
        return fwAD.unpack_dual(gradient).primal.detach(), fwAD.unpack_dual(gradient).tangent


def _check(f, theta, reached):
    with OpsSeen() as seen:
        torch.func.grad(f)(theta)
    assert reached in seen.names, f"{reached} is not reached; the ops are {sorted(seen.names)}"
    expected = fd_hessian(f, theta)
    hessian = torch.autograd.functional.hessian(f, theta, outer_jacobian_strategy="forward-mode", vectorize=True)
    torch.testing.assert_close(hessian, expected, **TOL)
    vector = _fixed(theta.numel(), seed=11)
    gradient, hvp = _hand_written_hvp(f, theta, vector)
    assert hvp is not None, "the gradient carries no tangent"
    torch.testing.assert_close(hvp, expected @ vector, **TOL)
    leaf = theta.clone().requires_grad_()
    plain = torch.autograd.grad(f(leaf), leaf)[0]
    assert torch.equal(gradient, plain), "the gradient under forward mode differs from plain reverse mode"


def test_cdist():
    x2 = _fixed(4, 3, seed=2)

    def f(theta):
        return (torch.cdist(theta.reshape(3, 3), x2) ** 3).sum()

    _check(f, _fixed(9, seed=1), "_cdist_forward")


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_grid_sample(mode):
    def f(theta):
        image, grid = split(theta, (1, 2, 3, 4), (1, 2, 2, 2))
        return F.grid_sample(image, grid * 0.9, mode=mode, align_corners=False).sin().sum()

    _check(f, _fixed(24 + 8, seed=3), "grid_sampler_2d_backward")


def test_scaled_dot_product_attention_cpu_flash():
    shape = (1, 2, 6, 4)

    def f(theta):
        q, k, v = split(theta, shape, shape, shape)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True).sin().sum()

    _check(f, _fixed(3 * 48, seed=4), "_scaled_dot_product_flash_attention_for_cpu_backward")


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(mode):
    indices = torch.tensor([0, 2, 1, 2, 4, 3])
    offsets = torch.tensor([0, 2, 5])
    psw = mode == "sum"

    def f(theta):
        weight, weights = split(theta, (5, 3), (6,)) if psw else (theta.reshape(5, 3), None)
        return F.embedding_bag(indices, weight, offsets, mode=mode, per_sample_weights=weights).pow(2).sum()

    _check(f, _fixed(15 + (6 if psw else 0), seed=5), "_embedding_bag")


def test_ctc_loss():
    targets = torch.tensor([[1, 2], [2, 2]])

    def f(theta):
        log_probs = theta.reshape(4, 2, 3).log_softmax(-1)
        return F.ctc_loss(log_probs, targets, [4, 3], [2, 1], reduction="sum")

    _check(f, _fixed(24, seed=6), "_ctc_loss_backward")


def test_multi_margin_loss():
    target = torch.tensor([0, 2, 1])

    def f(theta):
        return F.multi_margin_loss(theta.reshape(3, 4), target, p=2, reduction="sum")

    _check(f, _fixed(12, seed=7), "multi_margin_loss_backward")


# PyTorch's C++ backward reads the output where no rule sees it (cholesky_backward reads L,
# cdist's x2 gradient reads result.mT().contiguous(), prod reads the product): the
# gradients stay the node's, their tangents are replayed by torch.func.


@pytest.mark.filterwarnings("ignore:torch.cholesky is deprecated")
def test_cholesky():
    def f(theta):
        a = theta.reshape(3, 3)
        return torch.cholesky(a @ a.mT + 3 * torch.eye(3, dtype=DT)).sin().sum()

    _check(f, _fixed(9, seed=8), "cholesky")


def test_cdist_both_inputs():
    def f(theta):
        x1, x2 = split(theta, (3, 2), (4, 2))
        return (torch.cdist(x1, x2) ** 3).sum()

    _check(f, _fixed(14, seed=13), "_cdist_forward")


@pytest.mark.parametrize("op", ["scatter_reduce", "index_reduce"])
def test_prod_reductions(op):
    index = torch.tensor([0, 2, 0, 1])

    def f(theta):
        self, src = split(theta, (3, 2), (4, 2))
        if op == "index_reduce":
            return torch.index_reduce(self, 0, index, src, "prod").sin().sum()
        return torch.scatter_reduce(self, 0, index[:, None].expand(4, 2), src, "prod").sin().sum()

    _check(f, _fixed(14, seed=14, low=0.5, high=1.5), op)


def test_random_op_fails_loudly():
    # _standard_gamma's backward is _standard_gamma_grad(self, result), which has no
    # derivative in PyTorch: its own error, never a wrong tangent. (A random op is never
    # replayed: running it again would draw another sample.)
    with fwAD.dual_level():
        alpha = fwAD.make_dual(torch.full((4,), 2.0, dtype=DT).requires_grad_(), torch.ones(4, dtype=DT))
        loss = torch._standard_gamma(alpha).sum()
        with pytest.raises(NotImplementedError, match=r"forward AD with _standard_gamma_grad"):
            torch.autograd.grad(loss, alpha, create_graph=True)


def test_plain_backward_under_forward_mode_is_unchanged():
    # No graph recorded by the backward: the gradient is bitwise plain reverse mode.
    x2 = _fixed(4, 3, seed=2)
    theta = _fixed(3, 3, seed=1)
    leaf = theta.clone().requires_grad_()
    plain = torch.autograd.grad(torch.cdist(leaf, x2).sum(), leaf)[0]
    with fwAD.dual_level():
        w = fwAD.make_dual(theta.clone().requires_grad_(), torch.ones_like(theta))
        got = torch.autograd.grad(torch.cdist(w, x2).sum(), w)[0]
    assert torch.equal(fwAD.unpack_dual(got).primal, plain)


# ---------------------------------------------------------------- entries with a condition

def _scatter_reduce_second_order(reduce):
    """Output, gradients and their tangents through scatter_reduce under forward_ad."""
    self, src = _fixed(3, 4, seed=9), _fixed(3, 6, seed=10)
    index = torch.tensor([[0, 1, 1, 3, 0, 2], [2, 2, 0, 1, 3, 3], [1, 0, 0, 0, 2, 1]])
    with fwAD.dual_level():
        a = fwAD.make_dual(self.clone().requires_grad_(), _fixed(3, 4, seed=11))
        b = fwAD.make_dual(src.clone().requires_grad_(), _fixed(3, 6, seed=12))
        loss = torch.scatter_reduce(a, 1, index, b, reduce).pow(2).sum()
        grads = torch.autograd.grad(loss, (a, b), create_graph=True)
        return [(d.primal.detach(), d.tangent) for d in map(fwAD.unpack_dual, (loss, *grads))]


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
def test_scatter_reduce_outside_prod_is_plain_pytorch(reduce):
    # `when: reduce == "prod"`: every other reduce runs PyTorch's own formula, bitwise.
    got = _scatter_reduce_second_order(reduce)
    with plain_pytorch():
        expected = _scatter_reduce_second_order(reduce)
    for (primal, tangent), (primal_ref, tangent_ref) in zip(got, expected):
        assert torch.equal(primal, primal_ref) and torch.equal(tangent, tangent_ref)


def test_register_jvp_condition_leaves_other_calls_to_upstream():
    import torch_fwdad

    calls = []

    def rule(primals, tangents, output):
        calls.append(primals[4])
        return torch.zeros_like(output)

    op = torch.ops.aten.scatter_reduce.two
    previous = torch_fwdad.engine.registry._registrations[op]
    torch_fwdad.register_jvp(op, rule, override=True, corrects_upstream="test", when=lambda a: a[4] == "amax")
    try:
        index = torch.tensor([[0, 1, 1]])
        for reduce in ("sum", "amax"):
            torch.func.jvp(lambda s: torch.scatter_reduce(s, 1, index, s, reduce), (_fixed(1, 3, seed=1),),
                           (_fixed(1, 3, seed=2),))
    finally:
        torch_fwdad.register_jvp(op, previous.rule, override=True, corrects_upstream=previous.corrects_upstream,
                                 when=previous.when, _origin=previous.origin)
    assert calls == ["amax"]
