"""CTC loss and its backward (forward-over-reverse).

The alpha-beta recursions of LossCTC.cpp run over the extended label sequence
l' = (blank, l_1, blank, ..., l_L, blank), in log space. Here they run vectorised over
the batch and the positions s of l' (padded to the kernel's 2·max_target_length + 1),
one step per time, with tangents carried along: each step's log-sum-exp is linear in its
terms' tangents, weighted by their softmax. Entries no path reaches are -inf; their
tangents are 0, and -inf never meets a subtraction (masked before), so no NaN reaches a
tangent or a higher derivative.
"""

from __future__ import annotations

import math

import torch

from ._common import add_tangents

__all__ = ["ctc_loss_jvp", "ctc_loss_backward_jvp"]

_NEG_INF = -math.inf


def ctc_loss_jvp(log_probs_t, log_probs, targets, input_lengths, target_lengths, nll, log_alpha, blank, zero_infinity):
    """Tangents of (negative log-likelihood, log_alpha) of _ctc_loss.

    The likelihood's JVP is the transpose of PyTorch's own VJP: ⟨∂nll/∂log_probs,
    log_probs_t⟩ summed over time and classes, with the gradient from
    `_ctc_loss_backward` (linear in its grad, so ones give every sequence's gradient at
    once). Like that backward, it assumes `log_probs` are normalised (log_softmax
    output; pytorch issue 52241): on the simplex's tangent space it is the exact
    derivative. log_alpha, which PyTorch's backward reads, gets the linearised alpha
    recursion (exact, no normalisation assumed), zero where the kernel leaves the
    workspace unwritten (past each input length and each extended target).
    """
    grad = torch.ops.aten._ctc_loss_backward(
        torch.ones_like(nll), log_probs, targets, input_lengths, target_lengths, nll, log_alpha, blank, zero_infinity
    )
    nll_t = (grad * log_probs_t).sum(dim=(0, 2))
    layout = _Layout(log_probs, targets, input_lengths, target_lengths, log_alpha.shape[-1], blank)
    return nll_t, _alpha_tangent(layout, log_probs, log_probs_t, log_alpha)


def ctc_loss_backward_jvp(grad, log_probs, nll, log_alpha, grad_t, log_probs_t, nll_t, log_alpha_t,
                          targets, input_lengths, target_lengths, blank, zero_infinity, result):
    """Tangent of _ctc_loss_backward, each tensor input on its own.

    The kernel computes beta from log_probs and, for t below the input length,
        grad_input[t, b, c] = (exp(lp) - E) · grad[b],  E = Σ_{s: l'_s = c} exp(α_ts + β_ts + nll_b - lp_tc)
    (zero past the input length, and for an infinite nll under zero_infinity); α and nll
    are the inputs log_alpha and neg_log_likelihood, not recomputed.
    """
    layout = _Layout(log_probs, targets, input_lengths, target_lengths, log_alpha.shape[-1], blank)
    beta, beta_t = _beta_with_tangent(layout, log_probs, log_probs_t)
    alpha = torch.where(layout.valid, log_alpha, _NEG_INF)
    alpha_beta = alpha + beta  # (N, T, S)
    reached = alpha_beta > _NEG_INF
    lp = log_probs.transpose(0, 1)  # (N, T, C)
    nll_b = nll.view(-1, 1, 1)
    exponent = torch.where(reached, alpha_beta + nll_b - layout.at_labels(lp), 0.0)
    share = torch.where(reached, exponent.exp(), 0.0)  # γ_t(s): each position's share of E
    collected = layout.collect(share, lp)  # E, (N, T, C)
    probs = lp.exp()
    tangent = None
    if grad_t is not None:
        tangent = grad_t.view(-1, 1, 1) * (probs - collected)
    inner = None  # the tangent of the exponents of E's terms, per position s
    if log_alpha_t is not None:
        inner = torch.where(layout.valid, log_alpha_t, 0.0)
    if beta_t is not None:
        inner = add_tangents(inner, beta_t)
    if nll_t is not None:
        inner = add_tangents(inner, nll_t.view(-1, 1, 1).expand_as(share))
    collected_t = None if inner is None else layout.collect(share * inner, lp)
    if log_probs_t is not None:
        lp_t = log_probs_t.transpose(0, 1)
        collected_t = add_tangents(collected_t, -collected * lp_t)
        tangent = add_tangents(tangent, grad.view(-1, 1, 1) * probs * lp_t)
    if collected_t is not None:
        tangent = add_tangents(tangent, -grad.view(-1, 1, 1) * collected_t)
    if tangent is None:
        return None
    keep = layout.in_time.unsqueeze(-1)
    if zero_infinity:
        keep = keep & (nll != math.inf).view(-1, 1, 1)
    return torch.where(keep, tangent, 0.0).transpose(0, 1).to(result.dtype)


class _Layout:
    """Where each (sequence, time, extended-label position) is, as LossCTC.cpp walks it."""

    def __init__(self, log_probs, targets, input_lengths, target_lengths, positions, blank):
        device = log_probs.device
        self.steps, batch = log_probs.shape[0], log_probs.shape[1]
        input_lengths = torch.as_tensor(input_lengths, device=device).reshape(batch)
        target_lengths = torch.as_tensor(target_lengths, device=device).reshape(batch)
        max_labels = (positions - 1) // 2
        k = torch.arange(max_labels, device=device)
        if targets.dim() == 1:  # concatenated
            starts = target_lengths.cumsum(0) - target_lengths
            index = (starts.unsqueeze(1) + k).clamp(max=max(targets.numel() - 1, 0))
            labels = targets[index] if targets.numel() else torch.zeros_like(index)
        else:
            labels = targets[:, :max_labels]
        labels = torch.where(k < target_lengths.unsqueeze(1), labels, blank)
        s = torch.arange(positions, device=device)
        self.extended = torch.full((batch, positions), blank, dtype=torch.long, device=device)
        self.extended[:, 1::2] = labels
        self.on_path = s < (2 * target_lengths + 1).unsqueeze(1)  # (N, S)
        t = torch.arange(self.steps, device=device)
        self.in_time = t < input_lengths.unsqueeze(1)  # (N, T)
        self.last_step = t == (input_lengths - 1).unsqueeze(1)
        self.valid = self.in_time.unsqueeze(-1) & self.on_path.unsqueeze(1)  # (N, T, S)
        ends = 2 * target_lengths.unsqueeze(1)
        self.final = ((s == ends) | (s == ends - 1)) & self.on_path  # where beta starts
        self.first = (s <= 1) & self.on_path  # where alpha starts
        different = self.extended[:, 2:] != self.extended[:, :-2]
        # s -> s + 2 (beta) and s - 2 -> s (alpha): allowed between different labels
        self.skip_ahead = torch.cat([different, different.new_zeros(batch, 2)], 1) & (s + 2 < ends + 1)
        self.skip_back = torch.cat([different.new_zeros(batch, 2), different], 1) & self.on_path

    def at_labels(self, x):
        """x[n, t, l'_s] for every position s: (N, T, C) -> (N, T, S)."""
        return x.gather(2, self.extended.unsqueeze(1).expand(-1, x.shape[1], -1))

    def collect(self, per_position, like):
        """Σ over positions s with l'_s = c: (N, T, S) -> (N, T, C)."""
        index = self.extended.unsqueeze(1).expand(-1, per_position.shape[1], -1)
        return torch.zeros_like(like).scatter_add(2, index, per_position)


def _shift(x, by, fill):
    """x moved `by` positions along the last dim (positive: towards higher s), filled."""
    if by == 0:
        return x
    pad = torch.full_like(x[..., : abs(by)], fill)
    return torch.cat([pad, x[..., :-by]], -1) if by > 0 else torch.cat([x[..., -by:], pad], -1)


def _log_sum_exp_step(terms, term_tangents):
    """log Σ exp(terms) (-inf when every term is), and its tangent Σ softmax · tangents."""
    stacked = torch.stack(terms)
    reached = stacked > _NEG_INF
    safe = torch.where(reached, stacked, 0.0)
    peak = torch.where(reached, safe, _NEG_INF).amax(0)
    peak = torch.where(peak > _NEG_INF, peak, 0.0)
    weights = torch.where(reached, (safe - peak).exp(), 0.0)
    total = weights.sum(0)
    some = total > 0
    safe_total = torch.where(some, total, 1.0)
    value = torch.where(some, peak + safe_total.log(), _NEG_INF)
    tangent = None
    if term_tangents is not None:
        tangent = (weights / safe_total * torch.stack(term_tangents)).sum(0)
    return value, tangent


def _beta_with_tangent(layout, log_probs, log_probs_t):
    """log beta (N, T, S) as the backward kernel computes it, and its tangent along log_probs_t."""
    lp_at = layout.at_labels(log_probs.transpose(0, 1))
    lp_at_t = None if log_probs_t is None else layout.at_labels(log_probs_t.transpose(0, 1))
    batch, positions = layout.extended.shape
    later = torch.full((batch, positions), _NEG_INF, dtype=log_probs.dtype, device=log_probs.device)
    later_t = None if lp_at_t is None else torch.zeros_like(later)
    if layout.steps == 0:
        empty = torch.zeros(batch, 0, positions, dtype=log_probs.dtype, device=log_probs.device)
        return empty, None if lp_at_t is None else empty
    values, tangents = [None] * layout.steps, [None] * layout.steps
    for t in reversed(range(layout.steps)):
        skip = torch.where(layout.skip_ahead, _shift(later, -2, _NEG_INF), _NEG_INF)
        skip_t = None if later_t is None else torch.where(layout.skip_ahead, _shift(later_t, -2, 0.0), 0.0)
        terms_t = None if later_t is None else [later_t, _shift(later_t, -1, 0.0), skip_t]
        summed, summed_t = _log_sum_exp_step([later, _shift(later, -1, _NEG_INF), skip], terms_t)
        start = layout.last_step[:, t:t + 1] & layout.final
        inside = layout.in_time[:, t:t + 1] & layout.on_path & ~layout.last_step[:, t:t + 1]
        later = torch.where(start, lp_at[:, t], torch.where(inside, summed + lp_at[:, t], _NEG_INF))
        if lp_at_t is not None:
            step_t = torch.where(start, lp_at_t[:, t], torch.where(inside, summed_t + lp_at_t[:, t], 0.0))
            later_t = torch.where(later > _NEG_INF, step_t, 0.0)
        values[t], tangents[t] = later, later_t
    beta = torch.stack(values, 1)
    return beta, None if lp_at_t is None else torch.stack(tangents, 1)


def _alpha_tangent(layout, log_probs, log_probs_t, log_alpha):
    """Tangent of the kernel's log_alpha (N, T, S), with the kernel's values as the step weights."""
    if layout.steps == 0:
        return torch.zeros_like(log_alpha)
    alpha = torch.where(layout.valid, log_alpha, _NEG_INF)
    lp_at_t = layout.at_labels(log_probs_t.transpose(0, 1))
    tangents = [torch.where(layout.first & layout.in_time[:, :1] & (alpha[:, 0] > _NEG_INF), lp_at_t[:, 0], 0.0)]
    for t in range(1, layout.steps):
        before = alpha[:, t - 1]
        skip = torch.where(layout.skip_back, _shift(before, 2, _NEG_INF), _NEG_INF)
        before_t = tangents[-1]
        skip_t = torch.where(layout.skip_back, _shift(before_t, 2, 0.0), 0.0)
        _, summed_t = _log_sum_exp_step([before, _shift(before, 1, _NEG_INF), skip], [before_t, _shift(before_t, 1, 0.0), skip_t])
        reached = layout.valid[:, t] & (alpha[:, t] > _NEG_INF)
        tangents.append(torch.where(reached, summed_t + lp_at_t[:, t], 0.0))
    return torch.stack(tangents, 1)
