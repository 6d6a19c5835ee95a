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


def _prod_jvp(ops: _IndexOps, self_p, self_t, src_p, src_t, include_self, result):
    """Σ_members (product of the other members) · tangent, exact with zeros, at every order.

    The product of the others is built from multiplications only (no division by a
    member that may be zero, no branch on values), so its own derivatives are exact too:
    a group with two zeros gets the right second derivative (PyTorch's backward refuses
    double backward there), and vmap over batched primals sees no data-dependent control
    flow (the group layout depends on the index alone).
    """
    src = ops.region(src_p)
    positions = torch.arange(self_p.numel(), device=self_p.device).reshape(self_p.shape)
    keys = ops.take(positions).reshape(-1)
    members = src.reshape(-1)
    if include_self:
        keys = torch.cat([positions.reshape(-1), keys])
        members = torch.cat([self_p.reshape(-1), members])
    others = _products_of_others(members, keys)
    tangent = None
    if self_t is not None:
        if include_self:
            tangent = self_t * others[: self_p.numel()].reshape(self_p.shape)
        else:
            tangent = ops.clear(self_t)
    if src_t is not None:
        src_others = others[self_p.numel():] if include_self else others
        tangent = add_tangents(tangent, ops.add(torch.zeros_like(result), ops.region(src_t) * src_others.reshape(src.shape)))
    return tangent


def _products_of_others(members: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """For each member, the product of the other members with the same key (1 when alone).

    Members are sorted by key so each group is contiguous; the exclusive prefix product
    times the exclusive suffix product within the group is the product of the others.
    """
    keys, order = torch.sort(keys, stable=True)
    sorted_members = members[order]
    first = torch.searchsorted(keys, keys)  # start of each member's group
    last = torch.searchsorted(keys, keys, right=True) - 1
    count = keys.numel()
    before = _exclusive_group_prod(sorted_members, first)
    after = _exclusive_group_prod(sorted_members.flip(0), (count - 1 - last).flip(0)).flip(0)
    return torch.empty_like(sorted_members).index_copy(0, order, before * after)


def _exclusive_group_prod(x: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Product of the entries before each one within its group (groups contiguous, `first` their starts).

    A doubling scan (Hillis-Steele): log2(n) steps of multiplications, masked by index
    arithmetic only, written out here because torch's cumprod has no segmented form.
    """
    count = x.numel()
    offset = torch.arange(count, device=x.device) - first  # position within the group
    inclusive, shift = x, 1
    while shift < count:
        reach = torch.where(offset[shift:] >= shift, inclusive[: count - shift], torch.ones_like(inclusive[shift:]))
        inclusive = torch.cat([inclusive[:shift], inclusive[shift:] * reach])
        shift *= 2
    if count == 0:
        return inclusive
    exclusive = torch.cat([torch.ones_like(x[:1]), inclusive[: count - 1]])
    return torch.where(offset > 0, exclusive, torch.ones_like(exclusive))


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
