"""Embedding bags: the output is linear in the weight and in per_sample_weights.

For sum and mean the tangent is the same bag reduction applied to the tangent; for max
it is the tangent's entry at the index the primal picked (max_indices), PyTorch's
backward convention at ties, and zero for empty bags. offset2bag, bag_size and
max_indices are integer outputs without tangent.
"""

from __future__ import annotations

import torch

__all__ = ["embedding_bag_per_sample_weights_jvp", "embedding_bag_weight_jvp"]

MODE_MAX = 2


def embedding_bag_weight_jvp(weight_t, indices, offsets, mode, per_sample_weights, include_last_offset,
                             padding_idx, bag_size, max_indices):
    if mode == MODE_MAX:
        picked = weight_t.gather(0, max_indices)
        return torch.where((bag_size > 0).unsqueeze(-1), picked, torch.zeros_like(picked))
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
