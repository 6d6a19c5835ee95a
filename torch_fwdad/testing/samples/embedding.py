"""Samples for embedding bags: sum, mean, max; per_sample_weights; padding_idx;
include_last_offset; empty bags; repeated indices and ties for max."""

import torch

from . import ErrorSample, Sample, make, samples_for

SUM, MEAN, MAX = 0, 1, 2


def _bag_cases(dtype, device):
    long = dict(dtype=torch.long, device=device)
    weight = make(5, 3, dtype=dtype, device=device)
    indices = torch.tensor([1, 2, 2, 4, 0, 3], **long)
    offsets = torch.tensor([0, 2, 2, 5], **long)  # bags [1 2] [] [2 4 0] [3]
    psw = make(6, dtype=dtype, device=device)
    for mode, name in ((SUM, "sum"), (MEAN, "mean"), (MAX, "max")):
        yield (weight, indices, offsets, False, mode, False, None, False, -1), f"{name} with an empty bag"
        yield (weight, indices, offsets, False, mode, False, None, True, 2), f"{name} include_last_offset padding_idx"
    yield (weight, indices, offsets, False, SUM, False, psw, False, -1), "sum per_sample_weights"
    yield (weight, indices, offsets, False, SUM, False, psw, False, 4), "sum per_sample_weights padding_idx"
    tied = weight.detach().clone()
    tied[2] = tied[1]  # bag [1 2] ties in every column: the gradient goes to max_indices
    yield (tied, indices, offsets, False, MAX, False, None, False, -1), "max ties"
    yield (make(4, 2, dtype=dtype, device=device, noncontiguous=True), torch.tensor([0, 3, 3, 3], **long),
           torch.tensor([0, 2], **long), False, MEAN, False, None, False, -1), "repeated indices noncontiguous weight"
    yield (make(3, 2, dtype=dtype, device=device), torch.empty(0, **long), torch.tensor([0, 0], **long),
           False, SUM, False, None, False, -1), "only empty bags"


def _samples(dtype, device):
    for args, desc in _bag_cases(dtype, device):
        yield Sample(args, desc=desc)


def _errors(device):
    weight = torch.randn(5, 3, dtype=torch.float64, device=device)
    yield ErrorSample((weight, torch.tensor([1, 7], device=device), torch.tensor([0], device=device)), desc="index out of range")
    yield ErrorSample((weight, torch.tensor([1, 2], device=device), torch.tensor([0], device=device), False, MAX, False,
                       torch.ones(2, dtype=torch.float64, device=device)), desc="per_sample_weights with max")


@samples_for("aten::_embedding_bag", errors=_errors)
def embedding_bag_samples(dtype, device):
    yield from _samples(dtype, device)


@samples_for("aten::_embedding_bag_forward_only", errors=_errors)
def embedding_bag_forward_only_samples(dtype, device):
    yield from _samples(dtype, device)


# Backward ops (forward-over-reverse): the bag cases run forward, then a random grad.
def _backward_cases(dtype, device):
    for (weight, indices, offsets, _, mode, _, psw, last, padding_idx), desc in _bag_cases(dtype, device):
        for freq in (False, True):
            if freq and mode == MAX:
                continue
            _, offset2bag, bag_size, max_indices = torch.ops.aten._embedding_bag(
                weight, indices, offsets, freq, mode, False, psw, last, padding_idx)
            grad = make(bag_size.numel(), weight.shape[1], dtype=dtype, device=device)
            yield (grad, weight, indices, offsets, offset2bag, bag_size, max_indices, freq, mode, psw, padding_idx), \
                desc + (" scale_grad_by_freq" if freq else "")


@samples_for("aten::_embedding_bag_dense_backward")
def embedding_bag_dense_backward_samples(dtype, device):
    for (grad, weight, indices, _, offset2bag, bag_size, max_indices, freq, mode, psw, pad), desc in _backward_cases(dtype, device):
        yield Sample((grad, indices, offset2bag, bag_size, max_indices, weight.shape[0], freq, mode, psw, pad), desc=desc)


@samples_for("aten::_embedding_bag_backward")
def embedding_bag_backward_samples(dtype, device):
    # sparse=False only: with sparse=True the output is sparse (docs/out_of_reach.md)
    for (grad, weight, indices, offsets, offset2bag, bag_size, max_indices, freq, mode, psw, pad), desc in _backward_cases(dtype, device):
        yield Sample((grad, indices, offsets, offset2bag, bag_size, max_indices, weight.shape[0], freq, mode, False, psw, pad),
                     desc=desc)


@samples_for("aten::_embedding_bag_per_sample_weights_backward")
def embedding_bag_per_sample_weights_backward_samples(dtype, device):
    for (grad, weight, indices, offsets, offset2bag, _, _, freq, mode, psw, pad), desc in _backward_cases(dtype, device):
        if psw is not None and not freq:
            yield Sample((grad, weight, indices, offsets, offset2bag, mode, pad), desc=desc)
