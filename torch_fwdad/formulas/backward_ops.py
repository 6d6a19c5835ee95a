"""Backward ops, reached by forward-over-reverse (Hessians, Hessian-vector products).

A backward op is linear in its incoming gradient: that term is the op itself applied to
the gradient's tangent. Its tangent with respect to the other inputs is a second
derivative of the forward op: written out where PyTorch's double backward has a closed
form (and at ties it follows that double backward), otherwise a differentiable
re-expression of the kernel is linearised with torch.func.jvp.
"""

from __future__ import annotations

import math

import torch

from ._common import add_tangents

__all__ = [
    "no_derivative",
    "soft_margin_loss_second_derivative",
    "huber_loss_second_derivative",
    "cdist_backward_jvp",
    "pdist_backward_jvp",
]

_MEAN = 1  # at::Reduction::Mean


def no_derivative(tangent: torch.Tensor | None, op: str, argument: str) -> None:
    """Refuse a tangent on an input PyTorch's own backward does not differentiate either.

    Silently dropping it would give a wrong tangent; raising matches reverse mode, which
    raises "the derivative for ... is not implemented" for the same input.
    """
    if tangent is not None:
        raise NotImplementedError(
            f"torch_fwdad: the derivative of {op} with respect to '{argument}' is not implemented "
            f"(PyTorch's backward formula does not implement it either)"
        )
    return None


def _reduced(grad_input: torch.Tensor, reduction: int) -> torch.Tensor:
    """A mean reduction's backward divides by the element count (a no-op when empty)."""
    return grad_input / grad_input.numel() if reduction == _MEAN and grad_input.numel() else grad_input


def soft_margin_loss_second_derivative(self_t, grad_output, self, target, reduction):
    """d/dself of soft_margin_loss_backward along self_t (torch's soft_margin_loss_double_backward).

    The second derivative of log(1 + exp(-y x)) is y² σ(y x) σ(-y x); the sigmoid form
    avoids the overflow of exp(-y x) / (1 + exp(-y x))².
    """
    margin = target * self
    curvature = target * target * torch.sigmoid(margin) * torch.sigmoid(-margin)
    return _reduced(curvature * grad_output * self_t, reduction)


def huber_loss_second_derivative(self_t, grad_output, self, target, reduction, delta):
    """d/dself of huber_loss_backward along self_t (torch's huber_loss_double_backward).

    Inside |x - y| < delta the loss is quadratic (curvature 1), outside linear (0); at
    |x - y| == delta the curvature is 0, PyTorch's double-backward convention.
    """
    inside = (self - target).abs() < delta
    return _reduced(grad_output * self_t * inside, reduction)


def _pair_diff(x1, x2):
    """x1_i - x2_j for every pair: (..., r1, m), (..., r2, m) -> (..., r1, r2, m)."""
    return x1.unsqueeze(-2) - x2.unsqueeze(-3)


def _distance_backward_tangent(p: float, diff, grad, dist, diff_t, grad_t, dist_t):
    """Tangent of one pair's gradient term C(diff, grad, dist) of ATen's distance kernels.

    diff (..., m) is x_i - x_j; grad and dist are (..., 1); a tangent may be None. For
    finite p > 1 (and p < 1), C = grad * diff |diff|^(p-2) / dist^(p-1), so
    dC = w (grad_t diff + (p-1) grad diff_t) - (p-1) C dist_t / dist with w = |diff|^(p-2) / dist^(p-1).
    Where the kernel returns 0 (a pair at distance 0; a zero coordinate when p < 2,
    where |diff|^(p-2) is infinite) the tangent is 0 too; masked entries are replaced
    before dividing so no NaN reaches a higher derivative.
    """
    if p == 0:  # the 0-"norm" counts differing coordinates: piecewise constant
        return None
    if p == 1 or math.isinf(p):  # C = grad * sign(diff) [* (|diff| == dist)]: linear in grad
        if grad_t is None:
            return None
        selected = diff.sign() if p == 1 else diff.sign() * (diff.abs() == dist)
        return grad_t * selected
    zero = (dist == 0) | (diff == 0) if p < 2 else (dist == 0).expand_as(diff)
    safe_abs = torch.where(zero, torch.ones_like(diff), diff.abs())
    safe_dist = torch.where(dist == 0, torch.ones_like(dist), dist)
    weight = torch.where(zero, 0.0, safe_abs.pow(p - 2) / safe_dist.pow(p - 1))
    tangent = None
    if grad_t is not None:
        tangent = weight * diff * grad_t
    if diff_t is not None:
        tangent = add_tangents(tangent, (p - 1) * weight * grad * diff_t)
    if dist_t is not None:
        term = weight * diff * grad
        tangent = add_tangents(tangent, -(p - 1) * term * dist_t / safe_dist)
    return tangent


def _sub_or_none(a, b):
    if a is None:
        return None if b is None else -b
    return a if b is None else a - b


def cdist_backward_jvp(primals, tangents, p, result):
    """Tangent of _cdist_backward (the x1-gradient of cdist): sum over x2's rows of the pair terms.

    primals, tangents: (grad, x1, x2, cdist), tangents None where zero. With no pairs (an
    empty broadcast batch, or no rows) the kernel returns zeros of x1's own shape, which
    need not be the broadcast shape: the tangent is zero too.
    """
    grad, x1, x2, dist = primals
    grad_t, x1_t, x2_t, dist_t = tangents
    if dist.numel() == 0:
        return torch.zeros_like(result)
    pairs = dist.shape  # (..., r1, r2), batch dims broadcast as in the kernel
    diff = _pair_diff(x1, x2)
    diff_t = _sub_or_none(None if x1_t is None else x1_t.unsqueeze(-2), None if x2_t is None else x2_t.unsqueeze(-3))
    as_pair = lambda t: None if t is None else t.reshape(pairs).unsqueeze(-1)  # noqa: E731
    tangent = _distance_backward_tangent(p, diff, as_pair(grad), as_pair(dist), diff_t, as_pair(grad_t), as_pair(dist_t))
    return torch.zeros_like(result) if tangent is None else tangent.sum(-2).expand_as(result)


def pdist_backward_jvp(primals, tangents, p, result):
    """Tangent of _pdist_backward, the gradient of pdist.

    primals, tangents: (grad, self, pdist), tangents None where zero. Pair k = (i, j),
    i < j in row-major order (pdist's layout), adds its term to row i and subtracts it
    from row j.
    """
    grad, x, dist = primals
    grad_t, x_t, dist_t = tangents
    i, j = torch.triu_indices(x.shape[0], x.shape[0], 1, device=x.device)
    as_pair = lambda t: None if t is None else t.unsqueeze(-1)  # noqa: E731
    diff_t = None if x_t is None else x_t[i] - x_t[j]
    tangent = _distance_backward_tangent(p, x[i] - x[j], as_pair(grad), as_pair(dist), diff_t, as_pair(grad_t), as_pair(dist_t))
    if tangent is None:
        return torch.zeros_like(result)
    return torch.zeros_like(result).index_add(0, i, tangent).index_add(0, j, -tangent)
