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
