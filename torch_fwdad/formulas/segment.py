"""segment_reduce: reductions over consecutive segments along one axis."""

from __future__ import annotations

import torch

__all__ = ["segment_reduce_jvp"]


def segment_reduce_jvp(data_t, data, result, reduce, lengths, offsets, axis, initial):
    """Σ_k data_t[segment, k] · ∂result[segment]/∂data[segment, k].

    Segments are gathered into a padded (..., segments, max_length, ...) layout where
    each reduction's partial derivatives are plain tensor expressions (so the tangent is
    differentiable again). Ties of max/min share the tangent evenly and NaNs count as
    hits, as in `_segment_reduce_backward`.
    """
    axis = axis % data.dim()
    start, length = _segment_bounds(lengths, offsets)
    padded_t, valid = _gather_segments(data_t, start, length, axis)
    weight = _segment_partials(reduce, data, result, start, length, valid, axis, initial)
    return (padded_t * weight).sum(axis + 1)


def _segment_bounds(lengths, offsets):
    """(start, length) of every segment, shaped like `lengths`."""
    if lengths is not None:
        return lengths.cumsum(-1) - lengths, lengths
    return offsets[..., :-1], offsets.diff(dim=-1)


def _gather_segments(x, start, length, axis):
    """x regrouped as (*batch, segments, max_length, *inner), and where entries are real."""
    max_length = int(length.max()) if length.numel() else 0
    k = torch.arange(max_length, device=x.device)
    valid = k < length.unsqueeze(-1)
    index = (start.unsqueeze(-1) + k).where(valid, 0).flatten(-2)
    inner = x.shape[axis + 1:]
    index = index.view(*index.shape, *(1,) * len(inner)).expand(*index.shape, *inner)
    # reshape, not unflatten: the legacy vmap of batched gradcheck has no rule for it
    padded = x.gather(axis, index).reshape(*x.shape[:axis], *valid.shape[-2:], *inner)
    return padded, valid.view(*valid.shape, *(1,) * len(inner))


def _segment_partials(reduce, data, result, start, length, valid, axis, initial):
    segment_dim = axis + 1
    if reduce == "sum":
        return valid.to(data.dtype)
    if reduce == "mean":
        count = length.clamp(min=1).view(*length.shape, *(1,) * (data.dim() - axis))
        return valid.to(data.dtype) / count
    padded, _ = _gather_segments(data, start, length, axis)
    if reduce in ("max", "min"):
        hits = (valid & ((padded == result.unsqueeze(segment_dim)) | padded.isnan())).to(data.dtype)
        return hits / hits.sum(segment_dim, keepdim=True).clamp(min=1)
    if reduce == "prod":
        others = _exclusive_prod(padded.where(valid, 1), segment_dim)
        return others * valid if initial is None else others * valid * initial
    raise ValueError(f"segment_reduce: no forward rule for reduce={reduce!r}")


def _exclusive_prod(x, dim):
    """Product of all other entries along `dim`, exact with zeros (no division)."""
    if x.shape[dim] == 0:
        return x
    ones = torch.ones_like(x.narrow(dim, 0, 1))
    before = torch.cat([ones, x.narrow(dim, 0, x.shape[dim] - 1)], dim).cumprod(dim)
    after = torch.cat([x.narrow(dim, 1, x.shape[dim] - 1), ones], dim).flip(dim).cumprod(dim).flip(dim)
    return before * after
