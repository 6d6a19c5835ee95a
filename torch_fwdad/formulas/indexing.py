"""Indexed reductions: index_reduce and scatter_reduce.

Both reduce the members of a group (the self element, if include_self, and every
source element sent to the same position) with prod, mean, amax or amin. The two ops
differ only in how source elements find their position, so the math is written once
over `_IndexOps` / `_ScatterOps`.

Conventions follow PyTorch's backward formulas (index_reduce_backward,
scatter_reduce_backward): amax/amin share the tangent evenly among the members equal to
the result; with include_self=False, self's tangent reaches only positions no source
element is sent to.
"""

from __future__ import annotations

import torch

from ._common import add_tangents, zeros_if_none

__all__ = ["index_reduce_jvp", "scatter_reduce_jvp"]


class _IndexOps:
    """self[..., index[i], ...] <- source[..., i, ...] along dim (index is 1-D)."""

    def __init__(self, dim: int, index: torch.Tensor):
        self.dim, self.index = dim, index

    def region(self, source):  # the source elements that take part: all of them
        return source

    def reduce(self, self_, source, reduce, include_self):
        return self_.index_reduce(self.dim, self.index, source, reduce, include_self=include_self)

    def take(self, x):  # x at the position each source element is sent to
        return x.index_select(self.dim, self.index)

    def add(self, base, source):
        return base.index_add(self.dim, self.index, source)

    def clear(self, x):  # zero at every position some source element is sent to
        return x.index_fill(self.dim, self.index, 0)


class _ScatterOps(_IndexOps):
    """self[..., index[p], ...] <- src[p] along dim, for p in index's shape."""

    def region(self, source):
        if source.shape == self.index.shape:
            return source
        return source[tuple(slice(0, size) for size in self.index.shape)]

    def reduce(self, self_, source, reduce, include_self):
        return self_.scatter_reduce(self.dim, self.index, source, reduce, include_self=include_self)

    def take(self, x):
        return x.gather(self.dim, self.index)

    def add(self, base, source):
        return base.scatter_add(self.dim, self.index, source)

    def clear(self, x):
        return x.scatter(self.dim, self.index, 0.0)


def _zero_ranks(zero: torch.Tensor, group: torch.Tensor) -> tuple[torch.Tensor, int]:
    """For each zero, how many zeros of its group come before it (row-major); and the most per group."""
    ranks = torch.zeros_like(group)
    keys = group[zero]
    if keys.numel() == 0:
        return ranks, 0
    sorted_keys, order = torch.sort(keys, stable=True)
    within = torch.arange(keys.numel(), device=keys.device) - torch.searchsorted(sorted_keys, sorted_keys)
    rank = torch.empty_like(within)
    rank[order] = within
    ranks[zero] = rank
    return ranks, int(rank.max()) + 1


def _prod_jvp(ops: _IndexOps, self_p, self_t, src_p, src_t, include_self, result):
    """Σ_members (product of the other members) · tangent, exact with zeros, at every order.

    The product of the others is written without dividing by a zero: result / x for a
    nonzero x (its derivatives flow through result's own tangent), and, for a zero x,
    the reduction rerun with x alone replaced by 1. Zeros sharing a group are replaced
    one rank at a time, so a group with two zeros still has the right second derivative
    (PyTorch's backward refuses double backward there).
    """
    tangent = None
    if self_t is not None:
        if include_self:
            others = ops.reduce(torch.ones_like(self_p), ops.region(src_p), "prod", True)
            tangent = self_t * others
        else:
            tangent = ops.clear(self_t)
    if src_t is not None:
        src = ops.region(src_p)
        zero = src == 0
        others = ops.take(result) / torch.where(zero, torch.ones_like(src), src)
        if bool(zero.any()):
            positions = torch.arange(self_p.numel(), device=self_p.device).reshape(self_p.shape)
            ranks, most = _zero_ranks(zero, ops.take(positions))
            for rank in range(most):
                alone = zero & (ranks == rank)
                rerun = ops.take(ops.reduce(self_p, src.masked_fill(alone, 1), "prod", include_self))
                others = torch.where(alone, rerun, others)
        tangent = add_tangents(tangent, ops.add(torch.zeros_like(result), ops.region(src_t) * others))
    return tangent


def _mean_jvp(ops: _IndexOps, self_p, self_t, src_p, src_t, include_self, result):
    count = (torch.ones_like if include_self else torch.zeros_like)(result)
    count = ops.add(count, torch.ones_like(ops.region(src_p)))
    count = count.masked_fill(count == 0, 1)
    tangent = None
    if self_t is not None:
        tangent = self_t / count if include_self else ops.clear(self_t / count)
    if src_t is not None:
        tangent = add_tangents(tangent, ops.add(torch.zeros_like(result), ops.region(src_t)) / count)
    return tangent


def _extremum_jvp(ops: _IndexOps, self_p, self_t, src_p, src_t, include_self, result):
    # Backward's count: self is counted where it equals the result even when
    # include_self=False (its share is then dropped), and so it is here.
    src = ops.region(src_p)
    self_is = self_p == result
    src_is = src == ops.take(result)
    count = ops.add(self_is.to(result.dtype), src_is.to(result.dtype))
    tangent = None
    if self_t is not None:
        term = torch.where(self_is, self_t, torch.zeros_like(self_t))
        tangent = term if include_self else ops.clear(term)
    if src_t is not None:
        src_t = ops.region(src_t)
        tangent = add_tangents(tangent, ops.add(torch.zeros_like(result), torch.where(src_is, src_t, torch.zeros_like(src_t))))
    return tangent / count


_RULES = {"prod": _prod_jvp, "mean": _mean_jvp, "amax": _extremum_jvp, "amin": _extremum_jvp}


def index_reduce_jvp(self_p, self_t, dim, index, source_p, source_t, reduce, include_self, result):
    """Tangent of index_reduce (prod, mean, amax, amin); either tangent may be None."""
    ops = _IndexOps(dim, index)
    return _RULES[reduce](ops, self_p, self_t, source_p, source_t, include_self, result)


def scatter_reduce_jvp(self_p, self_t, dim, index, src_p, src_t, reduce, include_self, result):
    """Tangent of scatter_reduce.two.

    prod is ours (upstream returns no tangent at all). sum, mean, amax and amin compute
    what upstream's scatter_reduce_jvp computes, with the same ops, so tangents are
    unchanged by installing this entry; amax/amin also accept a src larger than index,
    where upstream's formula fails on a shape mismatch.
    """
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        # the legacy names "max"/"min" run forward but have no derivative: reverse mode
        # raises this (scatter_reduce_backward), upstream's forward mode returned no tangent
        raise RuntimeError(f"Expected 'reduce' to be one of 'sum', 'prod', 'mean', 'amax', 'amin' but got {reduce}.")
    if reduce == "prod":
        return _prod_jvp(_ScatterOps(dim, index), self_p, self_t, src_p, src_t, include_self, result)
    self_t, src_t = zeros_if_none(self_t, self_p), zeros_if_none(src_t, src_p)
    if reduce in ("sum", "mean"):  # linear
        return torch.scatter_reduce(self_t, dim, index, src_t, reduce, include_self=include_self)
    # amax / amin, as FunctionsManual.cpp's scatter_reduce_jvp
    ops = _ScatterOps(dim, index)
    src_p, src_t = ops.region(src_p), ops.region(src_t)
    mask_self = self_p == result
    mask_src = src_p == result.gather(dim, index)
    masked_src_t = torch.where(mask_src, src_t, torch.zeros_like(src_t))
    count = mask_self.to(self_t.dtype).scatter_reduce(dim, index, mask_src.to(self_t.dtype), "sum", include_self=include_self)
    masked_self_t = torch.where(mask_self, self_t, torch.zeros_like(self_t))
    return masked_self_t.scatter_reduce(dim, index, masked_src_t, "sum", include_self=include_self).div(count)
