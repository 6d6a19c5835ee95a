"""CTC loss."""

from __future__ import annotations

import torch

__all__ = ["ctc_loss_jvp"]


def ctc_loss_jvp(log_probs_t, log_probs, targets, input_lengths, target_lengths, nll, log_alpha, blank, zero_infinity):
    """Tangent of the per-sequence negative log-likelihood.

    The JVP is the transpose of PyTorch's own VJP: ⟨∂nll/∂log_probs, log_probs_t⟩ summed
    over time and classes, with the gradient from `_ctc_loss_backward` (linear in its
    grad, so ones give every sequence's gradient at once). Like that backward, it assumes
    `log_probs` are normalised (log_softmax output; pytorch issue 52241): on the
    simplex's tangent space it is the exact derivative. `_ctc_loss_backward` has no
    derivative in PyTorch, so this tangent cannot itself be differentiated.
    """
    grad = torch.ops.aten._ctc_loss_backward(
        torch.ones_like(nll), log_probs, targets, input_lengths, target_lengths, nll, log_alpha, blank, zero_infinity
    )
    return (grad * log_probs_t).sum(dim=(0, 2))
