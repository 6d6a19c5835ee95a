"""Samples for CTC loss (both overloads of aten::_ctc_loss)."""

import math

from functools import partial

import torch
from torch.testing import make_tensor

from . import (
    NOT_IN_DERIVATIVES_TABLE, ErrorSample, Sample, no_reverse_mode, samples_for, tangent_not_differentiable, third_order,
)


def _normalised_loss(op, *args, **kwargs):
    return _normalised(op, *args, **kwargs)[0]


def _normalised(op, log_probs, targets, input_lengths, target_lengths, *args, **kwargs):
    # PyTorch's CTC gradient assumes log_probs are log_softmax output (pytorch issue
    # 52241; OpInfo's gradcheck_wrapper_ctc_loss does the same), so finite differences
    # must see the function of the unnormalised scores. log_alpha is compared where the
    # kernel writes it and a path reaches it (elsewhere: uninitialised memory, or -inf).
    neg_log_likelihood, log_alpha = op(log_probs.log_softmax(-1), targets, input_lengths, target_lengths, *args, **kwargs)
    written = _written(log_alpha, input_lengths, target_lengths) & (log_alpha > -math.inf)
    return neg_log_likelihood, torch.where(written, log_alpha, 0.0)


def _written(log_alpha, input_lengths, target_lengths):
    """Entries of log_alpha (N, T, S) the kernel writes: t below the input length, s on the extended target."""
    steps, positions = torch.arange(log_alpha.shape[1]), torch.arange(log_alpha.shape[2])
    input_lengths, target_lengths = torch.as_tensor(input_lengths), torch.as_tensor(target_lengths)
    in_time = steps < input_lengths.view(-1, 1)
    on_path = positions < (2 * target_lengths + 1).view(-1, 1)
    return (in_time.unsqueeze(-1) & on_path.unsqueeze(1)).to(log_alpha.device)


def _ctc_cases(dtype, device):
    """(log_probs, targets, input_lengths, target_lengths, blank, zero_infinity, desc)"""
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    long = dict(dtype=torch.long, device=device)
    yield (make_arg(6, 2, 4), torch.tensor([[1, 2, 1], [3, 3, 0]], **long),
           [6, 4], [3, 2], 0, False, "padded targets, repeated label")
    yield (make_arg(5, 3, 4), torch.tensor([1, 2, 2, 0, 1], **long),
           [5, 5, 3], [2, 3, 0], 3, False, "concatenated targets, blank=3, empty target")
    yield (make_arg(4, 2, 3).transpose(0, 1).contiguous().transpose(0, 1),
           torch.tensor([[1, 2], [2, 0]], **long),
           [4, 3], [2, 1], 0, True, "zero_infinity, non-contiguous")


def _ctc_samples(dtype, device, lengths_as_tensors):
    for log_probs, targets, input_lengths, target_lengths, blank, zero_infinity, desc in _ctc_cases(dtype, device):
        if lengths_as_tensors:
            input_lengths = torch.tensor(input_lengths, dtype=torch.long, device=device)
            target_lengths = torch.tensor(target_lengths, dtype=torch.long, device=device)
        args = (log_probs, targets, input_lengths, target_lengths, blank, zero_infinity)
        yield Sample(args, desc=f"{desc} (loss)", wrapper=_normalised_loss)
        yield Sample(args, desc=f"{desc} (loss and log_alpha)", wrapper=_normalised)


def _ctc_errors(device):
    log_probs = torch.randn(4, 2, 3, dtype=torch.float64, device=device).log_softmax(-1)
    targets = torch.tensor([[1, 2], [1, 1]], device=device)
    yield ErrorSample((log_probs, targets, [5, 4], [2, 2]), desc="input length beyond T")
    yield ErrorSample((log_probs, targets, [4, 4], [2, 2], 3), desc="blank out of range")
    yield ErrorSample((log_probs[:, 0], targets, [4], [2]), desc="not 3-d")


# the tangent is <the gradient from _ctc_loss_backward, log_probs' tangent>: one backward pass
_CTC_TANGENT = tangent_not_differentiable("aten::_ctc_loss_backward", "the loss's gradient, dotted with the tangent")


@samples_for("aten::_ctc_loss", errors=_ctc_errors, xfails=_CTC_TANGENT)
def ctc_loss_samples(dtype, device):
    yield from _ctc_samples(dtype, device, lengths_as_tensors=False)


@samples_for("aten::_ctc_loss.Tensor", xfails=_CTC_TANGENT)
def ctc_loss_tensor_samples(dtype, device):
    yield from _ctc_samples(dtype, device, lengths_as_tensors=True)


def _ctc_backward_samples(dtype, device, lengths_as_tensors):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    cases = list(_ctc_cases(dtype, device))
    # an infeasible sequence (two repeated labels need 3 frames, it has 2) under zero_infinity
    long = dict(dtype=torch.long, device=device)
    cases.append((make_arg(3, 2, 3), torch.tensor([[1, 1], [2, 0]], **long),
                  [2, 3], [2, 1], 0, True, "zero_infinity, infeasible sequence"))
    for log_probs, targets, input_lengths, target_lengths, blank, zero_infinity, desc in cases:
        log_probs = log_probs.log_softmax(-1)
        if lengths_as_tensors:
            input_lengths = torch.tensor(input_lengths, dtype=torch.long, device=device)
            target_lengths = torch.tensor(target_lengths, dtype=torch.long, device=device)
        nll, log_alpha = torch.ops.aten._ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, zero_infinity)
        # unwritten workspace entries are never read: a fixed value keeps samples deterministic
        log_alpha = torch.where(_written(log_alpha, input_lengths, target_lengths), log_alpha, 0.0)
        grad = make_arg(nll.shape[0])
        yield Sample((grad, log_probs, targets, input_lengths, target_lengths, nll, log_alpha, blank, zero_infinity), desc=desc)


def _no_reverse_mode_at_all(op):
    return no_reverse_mode(op) | third_order(op, NOT_IN_DERIVATIVES_TABLE)


@samples_for("aten::_ctc_loss_backward", xfails=_no_reverse_mode_at_all("aten::_ctc_loss_backward"))
def ctc_loss_backward_samples(dtype, device):
    yield from _ctc_backward_samples(dtype, device, lengths_as_tensors=False)


@samples_for("aten::_ctc_loss_backward.Tensor", xfails=_no_reverse_mode_at_all("aten::_ctc_loss_backward.Tensor"))
def ctc_loss_backward_tensor_samples(dtype, device):
    yield from _ctc_backward_samples(dtype, device, lengths_as_tensors=True)
