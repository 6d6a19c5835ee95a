"""segment_reduce: reductions over consecutive segments along one axis."""

from __future__ import annotations

import torch

from ._common import add_tangents

__all__ = ["segment_reduce_jvp", "segment_reduce_backward_jvp"]


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


def _gather_segments(x, start, length, axis, with_index=False):
    """x regrouped as (*batch, segments, max_length, *inner), and where entries are real.

    with_index: also the gather index, to scatter a padded result back to x's layout.
    """
    max_length = int(length.max()) if length.numel() else 0
    k = torch.arange(max_length, device=x.device)
    valid = k < length.unsqueeze(-1)
    index = (start.unsqueeze(-1) + k).where(valid, 0).flatten(-2)
    inner = x.shape[axis + 1:]
    index = index.view(*index.shape, *(1,) * len(inner)).expand(*index.shape, *inner)
    # reshape, not unflatten: the legacy vmap of batched gradcheck has no rule for it
    padded = x.gather(axis, index).reshape(*x.shape[:axis], *valid.shape[-2:], *inner)
    valid = valid.view(*valid.shape, *(1,) * len(inner))
    return (padded, valid, index) if with_index else (padded, valid)


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


def segment_reduce_backward_jvp(primals, tangents, reduce, lengths, offsets, axis, initial):
    """Tangent of _segment_reduce_backward(grad, output, data, ...) (forward-over-reverse).

    primals, tangents: (grad, output, data), tangents None where zero.

    Differentiates the kernel's own expressions, each input on its own (output is an
    input of the kernel, not recomputed from data):
      sum, mean:  grad (/ length), linear in grad;
      max, min:   grad at the hits (equal to output, or NaN); at a tie of k hits the
                  kernel divides a positive grad by k and leaves a negative one whole, so
                  the slope in grad is 1/k or 1. The hits are piecewise constant in
                  output and data: no term;
      prod:       grad · output / x at a nonzero x; at a zero x (or NaN) grad times the
                  product of the others (initial included), whose tangent is written
                  through the segment's zero count (no division by a zero).
    Segments are padded as in segment_reduce_jvp; the tangent is scattered back to data's
    layout, zero outside every segment (unsafe lengths short of the axis).
    """
    grad, output, data = primals
    grad_t, output_t, data_t = tangents
    axis = axis % data.dim()
    start, length = _segment_bounds(lengths, offsets)
    x, valid, index = _gather_segments(data, start, length, axis, with_index=True)
    along = axis + 1  # the position-in-segment dim of the padded layout
    per_segment = lambda t: None if t is None else t.unsqueeze(along)  # noqa: E731
    g, g_t, out, out_t = per_segment(grad), per_segment(grad_t), per_segment(output), per_segment(output_t)
    if reduce == "sum":
        tangent = _scaled(g_t, valid.to(data.dtype))
    elif reduce == "mean":
        count = length.clamp(min=1).view(*length.shape, *(1,) * (data.dim() - axis))
        tangent = _scaled(g_t, valid.to(data.dtype) / count)
    elif reduce in ("max", "min"):
        hits = valid & ((x == out) | x.isnan())
        count = hits.sum(along, keepdim=True)
        shared = torch.where((g > 0) & (count > 1), count, torch.ones_like(count))
        tangent = _scaled(g_t, hits.to(data.dtype) / shared)
    elif reduce == "prod":
        x_t = None if data_t is None else _gather_segments(data_t, start, length, axis)[0]
        tangent = _prod_backward_tangent(x.where(valid, 1), valid, g, out, g_t, out_t, x_t, along, initial)
    else:
        raise ValueError(f"_segment_reduce_backward: no forward rule for reduce={reduce!r}")
    if tangent is None:
        return None
    # reshape, not flatten: the legacy vmap of batched gradcheck has no rule for flatten
    tangent = (tangent * valid).expand(x.shape).reshape(index.shape)
    return torch.zeros_like(data).scatter_add(axis, index, tangent)


def _scaled(tangent, weight):
    return None if tangent is None else tangent * weight


def _prod_backward_tangent(x, valid, g, out, g_t, out_t, x_t, along, initial):
    """Tangent of the prod backward per padded entry (x is 1 at padding).

    Nonzero x: grad·out/x. Zero (or NaN) x: grad·E with E = initial·Π_{others} x, and E's
    tangent from prefix and suffix products: multiplications only, so its own derivatives
    are exact at every order, zeros included (a mask on the zero count would not be).
    """
    special = valid & ((x == 0) | x.isnan())
    safe_x = torch.where(special, torch.ones_like(x), x)
    initial = 1 if initial is None else initial
    exclusive, exclusive_t = _exclusive_products(x, None if x_t is None else x_t * valid, along)
    tangent = None
    if g_t is not None:
        tangent = g_t * torch.where(special, initial * exclusive, out / safe_x)
    if out_t is not None:
        tangent = add_tangents(tangent, torch.where(special, torch.zeros_like(x), g * out_t / safe_x))
    if x_t is not None:
        nonzero_t = -g * out * x_t / (safe_x * safe_x)
        tangent = add_tangents(tangent, torch.where(special, g * initial * exclusive_t, nonzero_t))
    return tangent


def _exclusive_products(x, x_t, dim):
    """Π_{k≠j} x_k for every j along dim, and its tangent along x_t (None when x_t is None).

    Exclusive prefix times exclusive suffix products, one step per position.
    """
    length = x.shape[dim]
    xs = [x.select(dim, k) for k in range(length)]
    ts = [None] * length if x_t is None else [x_t.select(dim, k) for k in range(length)]

    def exclusive_scan(order):
        value = torch.ones_like(x.select(dim, 0))
        tangent = None if x_t is None else torch.zeros_like(value)
        seen = {}
        for k in order:
            seen[k] = value, tangent
            if x_t is not None:
                tangent = tangent * xs[k] + value * ts[k]
            value = value * xs[k]
        return seen

    if not length:
        return x, x_t
    before, after = exclusive_scan(range(length)), exclusive_scan(reversed(range(length)))
    values = torch.stack([before[k][0] * after[k][0] for k in range(length)], dim)
    if x_t is None:
        return values, None
    tangents = torch.stack([before[k][1] * after[k][0] + before[k][0] * after[k][1] for k in range(length)], dim)
    return values, tangents
