"""Samples for CTC loss (both overloads of aten::_ctc_loss)."""

import torch

from . import ErrorSample, Sample, make, samples_for


def _normalised(op, log_probs, *args, **kwargs):
    # PyTorch's CTC gradient assumes log_probs are log_softmax output (pytorch issue
    # 52241; OpInfo's gradcheck_wrapper_ctc_loss does the same), so finite differences
    # must see the function of the unnormalised scores. Only the loss is compared:
    # log_alpha is a workspace whose entries past each input length are uninitialised.
    neg_log_likelihood, _ = op(log_probs.log_softmax(-1), *args, **kwargs)
    return neg_log_likelihood


def _ctc_cases(dtype, device):
    """(log_probs, targets, input_lengths, target_lengths, blank, zero_infinity, desc)"""
    long = dict(dtype=torch.long, device=device)
    yield (make(6, 2, 4, dtype=dtype, device=device), torch.tensor([[1, 2, 1], [3, 3, 0]], **long),
           [6, 4], [3, 2], 0, False, "padded targets, repeated label")
    yield (make(5, 3, 4, dtype=dtype, device=device), torch.tensor([1, 2, 2, 0, 1], **long),
           [5, 5, 3], [2, 3, 0], 3, False, "concatenated targets, blank=3, empty target")
    yield (make(4, 2, 3, dtype=dtype, device=device).transpose(0, 1).contiguous().transpose(0, 1),
           torch.tensor([[1, 2], [2, 0]], **long),
           [4, 3], [2, 1], 0, True, "zero_infinity, non-contiguous")


def _ctc_samples(dtype, device, lengths_as_tensors):
    for log_probs, targets, input_lengths, target_lengths, blank, zero_infinity, desc in _ctc_cases(dtype, device):
        if lengths_as_tensors:
            input_lengths = torch.tensor(input_lengths, dtype=torch.long, device=device)
            target_lengths = torch.tensor(target_lengths, dtype=torch.long, device=device)
        yield Sample((log_probs, targets, input_lengths, target_lengths, blank, zero_infinity), desc=desc, wrapper=_normalised)


def _ctc_errors(device):
    log_probs = torch.randn(4, 2, 3, dtype=torch.float64, device=device).log_softmax(-1)
    targets = torch.tensor([[1, 2], [1, 1]], device=device)
    yield ErrorSample((log_probs, targets, [5, 4], [2, 2]), desc="input length beyond T")
    yield ErrorSample((log_probs, targets, [4, 4], [2, 2], 3), desc="blank out of range")
    yield ErrorSample((log_probs[:, 0], targets, [4], [2]), desc="not 3-d")


@samples_for("aten::_ctc_loss", errors=_ctc_errors)
def ctc_loss_samples(dtype, device):
    yield from _ctc_samples(dtype, device, lengths_as_tensors=False)


@samples_for("aten::_ctc_loss.Tensor")
def ctc_loss_tensor_samples(dtype, device):
    yield from _ctc_samples(dtype, device, lengths_as_tensors=True)
