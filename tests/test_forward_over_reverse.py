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

DT = torch.float64
TOL = dict(atol=1e-5, rtol=1e-4)
NEEDS_BACKOPS = "needs the backward-op rule from the backops branch"


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


@pytest.mark.xfail(strict=True, reason=NEEDS_BACKOPS)
def test_ctc_loss():
    targets = torch.tensor([[1, 2], [2, 2]])

    def f(theta):
        log_probs = theta.reshape(4, 2, 3).log_softmax(-1)
        return F.ctc_loss(log_probs, targets, [4, 3], [2, 1], reduction="sum")

    _check(f, _fixed(24, seed=6), "_ctc_loss_backward")


@pytest.mark.xfail(strict=True, reason=NEEDS_BACKOPS)
def test_multi_margin_loss():
    target = torch.tensor([0, 2, 1])

    def f(theta):
        return F.multi_margin_loss(theta.reshape(3, 4), target, p=2, reduction="sum")

    _check(f, _fixed(12, seed=7), "multi_margin_loss_backward")


@pytest.mark.filterwarnings("ignore:torch.cholesky is deprecated")
def test_refused_where_pytorch_backward_reads_the_output_in_cpp():
    # cholesky_backward reads L = cholesky(A) in PyTorch's C++ code: no rule sees it.
    a = _fixed(3, 3, seed=8)
    spd = a @ a.T + 3 * torch.eye(3, dtype=DT)
    with fwAD.dual_level():
        x = fwAD.make_dual(spd.clone().requires_grad_(), torch.eye(3, dtype=DT))
        loss = torch.cholesky(x).pow(2).sum()
        with pytest.raises(RuntimeError, match=r"backward of aten.cholesky.default .* reads the op's output"):
            torch.autograd.grad(loss, x, create_graph=True)


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
