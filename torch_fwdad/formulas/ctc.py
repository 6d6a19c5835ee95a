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


def ctc_loss_backward_jvp(primals, tangents, targets, input_lengths, target_lengths, blank, zero_infinity, result):
    """Tangent of _ctc_loss_backward, each tensor input on its own.

    primals, tangents: (grad, log_probs, neg_log_likelihood, log_alpha), tangents None where zero.

    The kernel computes beta from log_probs and, for t below the input length,
        grad_input[t, b, c] = (exp(lp) - E) · grad[b],  E = Σ_{s: l'_s = c} exp(α_ts + β_ts + nll_b - lp_tc)
    (zero past the input length, and for an infinite nll under zero_infinity); α and nll
    are the inputs log_alpha and neg_log_likelihood, not recomputed.
    """
    grad, log_probs, nll, log_alpha = primals
    grad_t, log_probs_t, nll_t, log_alpha_t = tangents
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
    if by > 0:
        return torch.nn.functional.pad(x[..., :-by], (by, 0), value=fill)
    return torch.nn.functional.pad(x[..., -by:], (0, -by), value=fill)


def _step_weights(values, lp_at, skip, direction):
    """Softmax weight of each predecessor (the same s, one and two positions back along the
    path) in the log-sum-exp of every step, from the recursion's own values (N, T, S):
    weights[k][:, i] belongs to the step into time i + 1 (alpha, direction 1) or i (beta, -1).
    Zero where a term is -inf or not allowed (the two-position skip between equal labels).
    """
    if direction > 0:
        before, into, lp_into = values[:, :-1], values[:, 1:], lp_at[:, 1:]
    else:
        before, into, lp_into = values[:, 1:], values[:, :-1], lp_at[:, :-1]
    summed = into - lp_into  # the step's log-sum-exp
    weights = []
    for k in range(3):
        term = _shift(before, direction * k, _NEG_INF)
        usable = (term > _NEG_INF) & (into > _NEG_INF)
        if k == 2:
            usable = usable & skip.unsqueeze(1)
        logit = torch.where(usable, term - torch.where(usable, summed, 0.0), 0.0)
        weights.append(torch.where(usable, logit.exp(), 0.0))
    return weights


def _propagate(weights, source, direction):
    """The linearised recursion: each step's tangent is its weighted predecessors' plus its source."""
    steps = source.shape[1]
    order = range(steps) if direction > 0 else reversed(range(steps))
    sources = source.unbind(1)
    per_step = [w.unbind(1) for w in weights]
    out, previous = [None] * steps, None
    for t in order:
        current = sources[t]
        if previous is not None:
            i = t - 1 if direction > 0 else t
            for k in range(3):
                current = current + per_step[k][i] * _shift(previous, direction * k, 0.0)
        out[t] = previous = current
    return torch.stack(out, 1)


def _beta_with_tangent(layout, log_probs, log_probs_t):
    """log beta (N, T, S) as the backward kernel computes it, and its tangent along log_probs_t."""
    lp_at = layout.at_labels(log_probs.transpose(0, 1))
    batch, positions = layout.extended.shape
    if layout.steps == 0:
        empty = torch.zeros(batch, 0, positions, dtype=log_probs.dtype, device=log_probs.device)
        return empty, None if log_probs_t is None else empty
    later = torch.full((batch, positions), _NEG_INF, dtype=log_probs.dtype, device=log_probs.device)
    values = [None] * layout.steps
    for t in reversed(range(layout.steps)):
        skip = torch.where(layout.skip_ahead, _shift(later, -2, _NEG_INF), _NEG_INF)
        summed = torch.logsumexp(torch.stack([later, _shift(later, -1, _NEG_INF), skip]), 0)
        start = layout.last_step[:, t:t + 1] & layout.final
        inside = layout.in_time[:, t:t + 1] & layout.on_path & ~layout.last_step[:, t:t + 1] & (summed > _NEG_INF)
        # where, not arithmetic, decides -inf: its tangent stays 0 (logsumexp's would be NaN)
        later = torch.where(start, lp_at[:, t], torch.where(inside, summed + lp_at[:, t], _NEG_INF))
        values[t] = later
    beta = torch.stack(values, 1)
    if log_probs_t is None:
        return beta, None
    lp_at_t = layout.at_labels(log_probs_t.transpose(0, 1))
    source = torch.where(beta > _NEG_INF, lp_at_t, 0.0)
    return beta, _propagate(_step_weights(beta, lp_at, layout.skip_ahead, -1), source, -1)


def _alpha_tangent(layout, log_probs, log_probs_t, log_alpha):
    """Tangent of the kernel's log_alpha (N, T, S), its step weights from the kernel's values."""
    if layout.steps == 0:
        return torch.zeros_like(log_alpha)
    alpha = torch.where(layout.valid, log_alpha, _NEG_INF)
    lp_at = layout.at_labels(log_probs.transpose(0, 1))
    lp_at_t = layout.at_labels(log_probs_t.transpose(0, 1))
    source = torch.where(alpha > _NEG_INF, lp_at_t, 0.0)
    return _propagate(_step_weights(alpha, lp_at, layout.skip_back, 1), source, 1)
