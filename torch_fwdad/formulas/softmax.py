"""Softmax (plain and _safe_softmax), log_softmax, logsumexp, logcumsumexp, glu and hardsigmoid.

Upstream's formulas for the softmax family and logsumexp are exact, but on plain tensors they scale the
exponentials in place (`self_p_exp *= self_t`). When the input requires grad inside a
forward_ad dual level, autograd has saved those exponentials for exp's backward, so reverse
mode through the tangent raises "modified by an inplace operation" (softmax, cross_entropy,
the attention that decomposes into softmax). The helpers below are upstream's formulas
written out of place, the same ops in the same order as upstream's own branch for tensor
subclasses (the one torch.func runs): where upstream works, the tangent and its gradient
are upstream's bit for bit (tests/test_reverse_over_forward.py).

Upstream's logcumsumexp tangent is silently wrong for inputs spread over more than about 16
along the dim (see logcumsumexp_jvp): its entry always applies.

glu's and hardsigmoid's upstream tangents call kernels with no derivative of their own
(glu_jvp, hardsigmoid_backward): anything differentiating them raises. Here they are
written with differentiable ops.
"""

from __future__ import annotations

import torch

__all__ = ["glu_jvp", "hardsigmoid_jvp", "log_softmax_jvp", "logcumsumexp_jvp", "logsumexp_jvp", "safe_softmax_jvp",
           "softmax_jvp"]


def _shifted_exp(self_p, dim):
    """exp(x − max over dim): the exp-normalize trick (amax fails on an empty tensor, where
    the shift does not matter)."""
    return (self_p - self_p.amax(dim, keepdim=True)).exp() if self_p.numel() > 0 else self_p.exp()


def logsumexp_jvp(self_p, self_t, dim, keepdim):
    exp = _shifted_exp(self_p, dim)
    sum_exp = exp.sum(dim, keepdim)
    return (exp * self_t).sum(dim, keepdim) / sum_exp


def softmax_jvp(self_p, self_t, dim, result):
    return result * (self_t - logsumexp_jvp(self_p, self_t, [dim], True))


def safe_softmax_jvp(self_p, self_t, dim, result):
    """As softmax_jvp, with a zero tangent on rows that are all −inf (whose output is 0).

    Those rows are replaced by zeros before the logsumexp tangent: upstream computes it
    on them too (0/0) and discards it with a where, which leaves NaN in the gradient of
    the tangent. The other rows' values are upstream's, bit for bit.
    """
    masked_rows = (self_p == float("-inf")).all([dim], True)
    finite_rows = torch.where(masked_rows, torch.zeros_like(self_p), self_p)
    lse_t = logsumexp_jvp(finite_rows, self_t, [dim], True)
    return result * (self_t - torch.where(masked_rows, torch.zeros_like(lse_t), lse_t))


def log_softmax_jvp(self_p, self_t, dim):
    return self_t - logsumexp_jvp(self_p, self_t, [dim], True)


def logcumsumexp_jvp(self_p, self_t, dim):
    """Σ_{j≤i} exp(x_j − out_i) ẋ_j, exact where upstream's is not.

    Upstream divides cumsum(e ⊙ ẋ) by cumsum(e) + 1e-13 with e = exp(x − max x): where the
    early running sums are small against the maximum the 1e-13 dominates them, and the
    tangent is silently wrong (x = [−30, 0], ẋ = [1, 0] gives 0.48 where the answer is 1).
    Here the sum is taken in log space, as logcumsumexp itself is: with a constant k > |ẋ|,
    Σ_{j≤i} exp(x_j − out_i)(ẋ_j + k) = exp(logcumsumexp(x + log(ẋ + k))_i − out_i), and the
    k terms sum to k (Σ_{j≤i} exp(x_j − out_i) = 1). log(ẋ + k) is smooth, so the
    tangent is differentiable in x and ẋ alike; float32 and lower are computed in float64,
    because the subtraction of k loses what k exceeds the result by.
    """
    wide = {torch.float32: torch.float64, torch.float16: torch.float64, torch.bfloat16: torch.float64,
            torch.complex64: torch.complex128}.get(self_t.dtype, self_t.dtype)
    x, x_t = self_p.to(wide), self_t.to(wide)
    out = torch.logcumsumexp(x, dim)
    # any k > |ẋ| gives the same sum (its derivative Σ_j exp(x_j − out_i) − 1 is 0)
    k = x_t.abs().amax() + 1 if x_t.numel() > 0 else 1.0
    return (torch.exp(torch.logcumsumexp(x + torch.log(x_t + k), dim) - out) - k).to(self_t.dtype)


def glu_jvp(self_p, self_t, dim):
    """glu(x) = a ⊙ σ(b) for the halves a, b of x along dim: ȧ σ(b) + a σ(b)(1 − σ(b)) ḃ."""
    a, b = self_p.chunk(2, dim)
    a_t, b_t = self_t.chunk(2, dim)
    gate = torch.sigmoid(b)
    return a_t * gate + a * gate * (1 - gate) * b_t


def hardsigmoid_jvp(self_p, self_t):
    """ẋ/6 on the open interval (−3, 3), 0 outside: hardsigmoid_backward's convention."""
    return torch.where((self_p > -3) & (self_p < 3), self_t / 6, 0)
