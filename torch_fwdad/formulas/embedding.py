"""Embedding bags: the output is linear in the weight and in per_sample_weights.

For sum and mean the tangent is the same bag reduction applied to the tangent; for max
it is the tangent's entry at the index the primal picked (max_indices), PyTorch's
backward convention at ties, and zero for empty bags. offset2bag, bag_size and
max_indices are integer outputs without tangent.
"""

from __future__ import annotations

import torch

__all__ = ["embedding_bag_dense_backward_reference", "embedding_bag_per_sample_weights_backward_reference",
           "embedding_bag_per_sample_weights_jvp", "embedding_bag_weight_jvp"]

MODE_MEAN, MODE_MAX = 1, 2


def embedding_bag_weight_jvp(weight_t, indices, offsets, mode, per_sample_weights, include_last_offset,
                             padding_idx, bag_size, max_indices):
    if mode == MODE_MAX:
        picked = weight_t.gather(0, max_indices)
        return torch.where(_nonempty(bag_size), picked, torch.zeros_like(picked))
    return _bags(weight_t, indices, offsets, mode, per_sample_weights, include_last_offset, padding_idx)


def embedding_bag_per_sample_weights_jvp(weight, indices, offsets, mode, per_sample_weights_t,
                                         include_last_offset, padding_idx):
    # per_sample_weights exist only for mode sum, where the output is bilinear in both
    return _bags(weight, indices, offsets, mode, per_sample_weights_t, include_last_offset, padding_idx)


def _bags(weight, indices, offsets, mode, per_sample_weights, include_last_offset, padding_idx):
    # _embedding_bag rather than the forward-only kernel: it has a reverse derivative, so
    # reverse-over-forward works too
    return torch.ops.aten._embedding_bag(weight, indices, offsets, False, mode, False, per_sample_weights,
                                         include_last_offset, padding_idx)[0]


def embedding_bag_dense_backward_reference(grad, indices, offset2bag, bag_size, maximum_indices, num_weights,
                                           scale_grad_by_freq, mode, per_sample_weights, padding_idx, offsets=None):
    """_embedding_bag_dense_backward written with differentiable ops (index_add, scatter_add).

    The backward is linear in grad and in per_sample_weights (bilinear together), so its
    tangent is this function at (grad_t, per_sample_weights) plus at (grad, per_sample_weights_t).
    offset2bag, bag_size and maximum_indices are the integer outputs of _embedding_bag.
    """
    if scale_grad_by_freq and mode != MODE_MAX:
        # PyTorch's frequency scaling does not divide by plain index counts (on torch 2.13 it
        # halves the last index of [1, 2, 2, 4, 0, 3]); the kernel itself is linear in grad and
        # in per_sample_weights, so use it (no reverse mode through it, forward mode is fine)
        return torch.ops.aten._embedding_bag_dense_backward(grad, indices, offset2bag, bag_size, maximum_indices,
                                                             num_weights, True, mode, per_sample_weights, padding_idx)
    out = grad.new_zeros(num_weights, grad.shape[-1])
    if mode == MODE_MAX:  # each column's gradient goes to the row the max picked (none for an empty bag)
        picked = _nonempty(bag_size)
        return out.scatter_add(0, maximum_indices.clamp(min=0), torch.where(picked, grad, torch.zeros_like(grad)))
    if indices.numel() == 0:
        return out
    bags = _offset2bag(indices, offset2bag, bag_size, offsets)
    rows = grad.index_select(0, bags)
    if mode == MODE_MEAN:
        rows = rows / bag_size.index_select(0, bags).clamp(min=1).to(rows.dtype).unsqueeze(-1)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.unsqueeze(-1)
    if padding_idx >= 0:
        rows = torch.where((indices != padding_idx).unsqueeze(-1), rows, torch.zeros_like(rows))
    return out.index_add(0, indices, rows)


def _nonempty(bag_size):
    """Bags whose max has a source row, as PyTorch's max backward decides: bag_size != 0.

    Decreasing offsets ([0, 3, 1], which PyTorch accepts) give a negative bag_size, yet
    the kernel picks a row and reverse mode differentiates it.
    """
    return (bag_size != 0).unsqueeze(-1)


def _offset2bag(indices, offset2bag, bag_size, offsets=None):
    if offset2bag.numel() == indices.numel():
        return offset2bag
    # the fast sum path (float32 without per-sample weights' bookkeeping) leaves offset2bag
    # empty and bag_size zero: rebuild it from the offsets where the overload has them
    if offsets is not None:
        positions = torch.arange(indices.numel(), device=indices.device)
        return torch.searchsorted(offsets, positions, right=True) - 1
    return torch.repeat_interleave(torch.arange(bag_size.numel(), device=indices.device), bag_size)


def embedding_bag_per_sample_weights_backward_reference(grad, weight, indices, offsets, offset2bag, mode, padding_idx):
    """_embedding_bag_per_sample_weights_backward with differentiable ops: entry i is
    <grad[bag of i], weight[indices[i]]> (zero at padding_idx); bilinear in grad and weight."""
    if offset2bag.numel() != indices.numel():  # not built by the forward: let the kernel rebuild it
        return torch.ops.aten._embedding_bag_per_sample_weights_backward(grad, weight, indices, offsets, offset2bag,
                                                                         mode, padding_idx)
    products = (grad.index_select(0, offset2bag) * weight.index_select(0, indices)).sum(-1)
    if padding_idx >= 0:
        products = torch.where(indices != padding_idx, products, torch.zeros_like(products))
    return products
