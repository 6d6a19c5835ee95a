"""Distances: cdist, pdist and the matmul-based Euclidean distance.

Conventions follow PyTorch's backward kernels (`_cdist_backward`, `_pdist_backward`,
`_euclidean_dist_backward`), so JVP and VJP agree:

- p = 0: the distance counts differing coordinates; its derivative is 0.
- a zero distance has a zero derivative for every p (the central difference there is 0
  too: ‖εt‖ - ‖-εt‖ = 0).
- p = 1: sign(diff), with sign(0) = 0.
- p = ∞: every coordinate whose |diff| equals the distance gets sign(diff), ties are
  not split (what the backward kernel does: `sign(diff) * (|diff| == dist)`).
- other p: sign(diff)·|diff|^(p-1) / dist^(p-1), 0 for a zero coordinate when p < 1.
  Every branch is computed from finite values, so derivatives of the tangent (reverse
  over forward included) stay finite at zero distances.
"""

from __future__ import annotations

import math

import torch

from ._common import add_tangents, outer_derivative_possible

__all__ = ["cdist_jvp", "euclidean_dist_jvp", "pdist_jvp"]


def _safe(x: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
    """x with 1 where `bad`: keeps every branch of a torch.where finite, derivatives included."""
    return torch.where(bad, torch.ones_like(x), x)


def _pnorm_weights(diff: torch.Tensor, dist: torch.Tensor, p: float) -> torch.Tensor:
    """w with d dist = Σ_k w_k · d diff_k, for diff [..., M] and dist [...] (p ∉ {0, 2})."""
    dist = dist.unsqueeze(-1)
    if p == 1:
        return diff.sign()
    if math.isinf(p):
        return diff.sign() * (diff.abs() == dist).to(diff.dtype)
    zero_dist = dist == 0
    scale = torch.where(zero_dist, torch.zeros_like(dist), _safe(dist, zero_dist).pow(1 - p))
    if p < 2:  # |diff|^(p-1) has an infinite (p < 1: value, 1 < p < 2: derivative) at 0
        zero_diff = diff == 0
        power = torch.where(zero_diff, torch.zeros_like(diff), _safe(diff.abs(), zero_diff).pow(p - 1))
    else:
        power = diff.abs().pow(p - 1)
    return diff.sign() * power * scale


def _over_dist(numerator: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    zero = dist == 0
    return torch.where(zero, 0.0, numerator / torch.where(zero, 1.0, dist))


def _ones_column(x: torch.Tensor) -> torch.Tensor:
    return x.new_ones(x.shape[:-1] + (1,))


def _euclidean_terms(x1_p, x1_t, x2_p, x2_t, dist):
    """d‖x1_i - x2_j‖ = ((x1_i - x2_j)·(t1_i - t2_j)) / dist_ij, 0 where dist is 0.

    The numerator a_i + b_j - t1_i·x2_j - x1_i·t2_j (a_i = x1_i·t1_i, b_j = x2_j·t2_j) is
    one matmul of [a | 1 | -t1 | -x1] by [1 | b | x2 | t2], keeping only the blocks of
    the inputs that carry tangents: no [P, R] intermediate besides the result. When no
    outer derivative can see the rule, the division is done in place on that result and
    zero distances, if any, are filled afterwards: on CPU without zeros, the division and
    one reduction over [P, R] (the floor is the division alone: benchmarks/bench_cdist.py).
    """
    left, right = [], []
    if x1_t is not None:
        left += [(x1_p * x1_t).sum(-1, keepdim=True), -x1_t]
        right += [_ones_column(x2_p), x2_p]
    if x2_t is not None:
        left += [_ones_column(x1_p), -x1_p]
        right += [(x2_p * x2_t).sum(-1, keepdim=True), x2_t]
    numerator = torch.cat(left, -1) @ torch.cat(right, -1).mT
    if numerator.shape == dist.shape and not outer_derivative_possible(x1_p, x1_t, x2_p, x2_t, dist):
        numerator.div_(dist)
        return numerator if _no_zero_on_cpu(dist) else numerator.masked_fill_(dist == 0, 0)
    return _over_dist(numerator.expand_as(dist), dist)


def _no_zero_on_cpu(dist: torch.Tensor) -> bool:
    """True when dist, a plain CPU tensor (reading the answer costs no device sync), has no
    zero: one reduction pass, against a mask and a masked fill (~6x dearer) over [P, R].
    False while tracing (torch.compile, fake tensors, make_fx and other dispatch modes):
    a traced program would keep this one answer for every input."""
    plain = (type(dist) is torch.Tensor and not torch.compiler.is_compiling()
             and torch._C._len_torch_dispatch_stack() == 0)
    return plain and dist.device.type == "cpu" and dist.numel() > 0 and bool(dist.amin() > 0)


def cdist_jvp(x1_p, x1_t, x2_p, x2_t, p: float, result: torch.Tensor) -> torch.Tensor:
    """Tangent of _cdist_forward(x1 [..., P, M], x2 [..., R, M]) -> [..., P, R] (batch dims broadcast).

    Either tangent may be None (that input carries none). p = 2 goes through matmuls
    (no [..., P, R, M] intermediate); other p build the pairwise differences once.
    """
    if p == 0:
        return torch.zeros_like(result)
    if p == 2:
        return _euclidean_terms(x1_p, x1_t, x2_p, x2_t, result)
    diff = x1_p.unsqueeze(-2) - x2_p.unsqueeze(-3)
    weights = _pnorm_weights(diff, result, p)
    tangent = None
    if x1_t is not None:
        tangent = add_tangents(tangent, (weights * x1_t.unsqueeze(-2)).sum(-1))
    if x2_t is not None:
        tangent = add_tangents(tangent, -(weights * x2_t.unsqueeze(-3)).sum(-1))
    return tangent.expand_as(result)


def euclidean_dist_jvp(x1_p, x1_t, x2_p, x2_t, result: torch.Tensor) -> torch.Tensor:
    """Tangent of _euclidean_dist (the matmul path of cdist, p = 2); 0 where the distance is 0."""
    return _euclidean_terms(x1_p, x1_t, x2_p, x2_t, result)


def pdist_jvp(self_t: torch.Tensor, self_p: torch.Tensor, p: float, result: torch.Tensor) -> torch.Tensor:
    """Tangent of _pdist_forward(x [N, M]) -> distances of the pairs i < j, row-major."""
    if p == 0 or result.numel() == 0:
        return torch.zeros_like(result)
    n = self_p.shape[0]
    first, second = torch.triu_indices(n, n, 1, device=self_p.device)
    diff = self_p[first] - self_p[second]
    diff_t = self_t[first] - self_t[second]
    if p == 2:
        return _over_dist((diff * diff_t).sum(-1), result)
    return (_pnorm_weights(diff, result, p) * diff_t).sum(-1)
