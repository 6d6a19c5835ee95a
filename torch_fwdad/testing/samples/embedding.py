"""Samples for embedding bags: sum, mean, max; per_sample_weights; padding_idx;
include_last_offset; empty bags; repeated indices and ties for max."""

from functools import partial

import torch
from torch.testing import make_tensor

from . import (
    FWD_OVER_REV, OWN_BACKWARD_NOT_IMPLEMENTED, REV_OVER_FWD, ErrorSample, Sample, gradient_kink_at, no_reverse_mode,
    samples_for, tangent_not_differentiable, third_order, xfail,
)

SUM, MEAN, MAX = 0, 1, 2
MAX_TIES = xfail("finite differences straddle the tie; the tangent follows max_indices, as the backward does",
                 "gradcheck", "second_order", *REV_OVER_FWD) | gradient_kink_at("a tie of the max")


def _bag_cases(dtype, device):
    """(args, desc, expected failures of the forward op)"""
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    long = dict(dtype=torch.long, device=device)
    weight = make_arg(5, 3)
    indices = torch.tensor([1, 2, 2, 4, 0, 3], **long)
    offsets = torch.tensor([0, 2, 2, 5], **long)  # bags [1 2] [] [2 4 0] [3]
    psw = make_arg(6)
    for mode, name in ((SUM, "sum"), (MEAN, "mean"), (MAX, "max")):
        yield (weight, indices, offsets, False, mode, False, None, False, -1), f"{name} with an empty bag", {}
        yield (weight, indices, offsets, False, mode, False, None, True, 2), f"{name} include_last_offset padding_idx", {}
    yield (weight, indices, offsets, False, SUM, False, psw, False, -1), "sum per_sample_weights", {}
    yield (weight, indices, offsets, False, SUM, False, psw, False, 4), "sum per_sample_weights padding_idx", {}
    tied = weight.detach().clone()
    tied[2] = tied[1]  # bag [1 2] ties in every column: the gradient goes to max_indices
    yield (tied, indices, offsets, False, MAX, False, None, False, -1), "max ties", MAX_TIES
    yield (make_arg(4, 2, noncontiguous=True), torch.tensor([0, 3, 3, 3], **long),
           torch.tensor([0, 2], **long), False, MEAN, False, None, False, -1), "repeated indices noncontiguous weight", {}
    yield (make_arg(3, 2), torch.empty(0, **long), torch.tensor([0, 0], **long),
           False, SUM, False, None, False, -1), "only empty bags", {}


def _samples(dtype, device):
    for args, desc, xfails in _bag_cases(dtype, device):
        yield Sample(args, desc=desc, xfails=xfails)


def _errors(device):
    weight = torch.randn(5, 3, dtype=torch.float64, device=device)
    yield ErrorSample((weight, torch.tensor([1, 7], device=device), torch.tensor([0], device=device)), desc="index out of range")
    yield ErrorSample((weight, torch.tensor([1, 2], device=device), torch.tensor([0], device=device), False, MAX, False,
                       torch.ones(2, dtype=torch.float64, device=device)), desc="per_sample_weights with max")


@samples_for("aten::_embedding_bag", errors=_errors)
def embedding_bag_samples(dtype, device):
    yield from _samples(dtype, device)


@samples_for("aten::_embedding_bag_forward_only", errors=_errors, xfails=xfail(
    "PyTorch's _embedding_bag_forward_only refuses inputs that require grad ('Autograd not "
    "support dtype: Long'), so checks that need reverse mode cannot call it; its tangents are "
    "checked by partial and second_order here and against _embedding_bag in tests/test_vision_embedding.py",
    "gradcheck", "jvp_vjp", "unchanged", *FWD_OVER_REV, "rev_over_fwd_forward_ad"))
def embedding_bag_forward_only_samples(dtype, device):
    yield from _samples(dtype, device)


# Backward ops (forward-over-reverse): the bag cases run forward, then a random grad.
def _backward_cases(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for (weight, indices, offsets, _, mode, _, psw, last, padding_idx), desc, _ in _bag_cases(dtype, device):
        for freq in (False, True):
            if freq and mode == MAX:
                continue
            _, offset2bag, bag_size, max_indices = torch.ops.aten._embedding_bag(
                weight, indices, offsets, freq, mode, False, psw, last, padding_idx)
            grad = make_arg(bag_size.numel(), weight.shape[1])
            yield (grad, weight, indices, offsets, offset2bag, bag_size, max_indices, freq, mode, psw, padding_idx), \
                desc + (" scale_grad_by_freq" if freq else "")


def _frequency_scaled(sample_args, desc, psw):
    """A Sample of a backward op; with scale_grad_by_freq the tangent is the kernel itself
    (formulas/embedding.py), through grad's tangent and, with per_sample_weights, through grad."""
    if not desc.endswith("scale_grad_by_freq"):
        return Sample(sample_args, desc=desc)
    xfails = tangent_not_differentiable("_embedding_bag_dense_backward", "with scale_grad_by_freq, whose scaling "
                                        "torch_fwdad does not rewrite")
    if psw is None:  # constant tangents (forward_ad) then reach the kernel with nothing requiring grad
        xfails = {check: reason for check, reason in xfails.items() if check != "rev_over_fwd_forward_ad"}
    return Sample(sample_args, desc=desc, xfails=xfails)


def _no_reverse_mode(op):
    return (no_reverse_mode(op, "tests/test_second_order_vision.py, with Hessians against finite differences")
            | third_order(op, OWN_BACKWARD_NOT_IMPLEMENTED))


@samples_for("aten::_embedding_bag_dense_backward", xfails=_no_reverse_mode("aten::_embedding_bag_dense_backward"))
def embedding_bag_dense_backward_samples(dtype, device):
    for (grad, weight, indices, _, offset2bag, bag_size, max_indices, freq, mode, psw, pad), desc in _backward_cases(dtype, device):
        yield _frequency_scaled((grad, indices, offset2bag, bag_size, max_indices, weight.shape[0], freq, mode, psw, pad),
                                desc, psw)


@samples_for("aten::_embedding_bag_backward", xfails=_no_reverse_mode("aten::_embedding_bag_backward"))
def embedding_bag_backward_samples(dtype, device):
    # sparse=False only: with sparse=True the output is sparse (docs/out_of_reach.md)
    for (grad, weight, indices, offsets, offset2bag, bag_size, max_indices, freq, mode, psw, pad), desc in _backward_cases(dtype, device):
        yield _frequency_scaled((grad, indices, offsets, offset2bag, bag_size, max_indices, weight.shape[0], freq, mode, False,
                                 psw, pad), desc, psw)


@samples_for("aten::_embedding_bag_per_sample_weights_backward", xfails=xfail(
    "PyTorch has no backward formula for _embedding_bag_per_sample_weights_backward (it is not in "
    "its derivatives table), so reverse mode through it raises: there is no VJP to compare the JVP "
    "with and no reverse gradient to compare bitwise (Hessians through per_sample_weights are "
    "checked against finite differences in tests/test_second_order_vision.py)", "jvp_vjp", "unchanged",
) | third_order("aten::_embedding_bag_per_sample_weights_backward", OWN_BACKWARD_NOT_IMPLEMENTED))
def embedding_bag_per_sample_weights_backward_samples(dtype, device):
    for (grad, weight, indices, offsets, offset2bag, _, _, freq, mode, psw, pad), desc in _backward_cases(dtype, device):
        if psw is not None and not freq:
            yield Sample((grad, weight, indices, offsets, offset2bag, mode, pad), desc=desc)
