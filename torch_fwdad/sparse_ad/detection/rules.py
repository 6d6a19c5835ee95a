"""Per-op dependency rules of the structural tracer: which input entries each output element reads.

Rules cover pointwise ops (broadcasting), reductions, ops that mix along one dim (softmax,
cumsum, sort), data movement (views, slicing, indexing, cat, padding, scatter of values), matmul
and convolution. `rule_for` picks one from the tables at the end, or None (dense fallback).
Each rule takes (tracer, func, args, kwargs, outs) and returns one (numel, inputs) sparse
matrix per output; it reads the tracer's `deps_of`, `tracked`, `num_inputs` and `unknown`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from torch_fwdad.engine.schema import OpSignature

aten = torch.ops.aten


def written_arguments(func, args, kwargs):
    if not func._schema.is_mutable:
        return []
    bound = _bind(func, args, kwargs)
    return [bound[a.name] for a in func._schema.arguments
            if a.alias_info is not None and a.alias_info.is_write and isinstance(bound.get(a.name), torch.Tensor)]


@functools.lru_cache(maxsize=None)
def _signature(func) -> OpSignature:
    return OpSignature.from_schema(func._schema)


def _bind(func, args, kwargs) -> dict:
    """Argument name -> value (defaults filled), by the engine's own binding."""
    signature = _signature(func)
    return dict(zip(signature.arg_names, signature.bind(tuple(args), kwargs)))


def _broadcast(tracer, tensor, shape) -> sp.csr_array:
    deps = tracer.deps_of(tensor)
    if tuple(tensor.shape) == tuple(shape):
        return deps
    source = torch.arange(tensor.numel()).reshape(tensor.shape).expand(shape).reshape(-1)
    return deps[source.numpy()]


def _pointwise_rule(tracer, func, args, kwargs, outs):
    shape = outs[0].shape
    tensors = [t for t in tree_flatten((args, kwargs))[0] if tracer.tracked(t)]
    union = sum((_broadcast(tracer, t, shape) for t in tensors[1:]), _broadcast(tracer, tensors[0], shape))
    return [union] * len(outs)


def _copy_rule(tracer, func, args, kwargs, outs):
    return [_broadcast(tracer, args[1], outs[0].shape)]


def _constant_rule(tracer, func, args, kwargs, outs):
    return [sp.csr_array((t.numel(), tracer.num_inputs), dtype=bool) for t in outs]


def dense_rule(tracer, func, args, kwargs, outs):
    union = _all_deps(tracer, args, kwargs)
    return [sp.csr_array(np.ones((t.numel(), 1), dtype=bool)) @ union for t in outs]


def _all_deps(tracer, args, kwargs):
    rows = [tracer.deps_of(t).sum(axis=0) for t in tree_flatten((args, kwargs))[0] if tracer.tracked(t)]
    return sp.csr_array(np.asarray(sum(rows)).reshape(1, -1) > 0)


def _groups(shape, dims):
    """(groups, group_size) matrix of flat indices: one row per index of the dims not in `dims`."""
    dims = sorted({d % len(shape) for d in dims}) if shape else []
    kept = [d for d in range(len(shape)) if d not in dims]
    ids = torch.arange(math.prod(shape)).reshape(shape).permute(*kept, *dims)
    return ids.reshape(math.prod(shape[d] for d in kept), -1).numpy()


def _group_matrix(groups, numel):
    rows = np.repeat(np.arange(len(groups)), groups.shape[1])
    return sp.csr_array((np.ones(groups.size, dtype=np.int32), (rows, groups.reshape(-1))),
                        shape=(len(groups), numel))


def _reduced_dims(bound, ndim):
    dim = bound.get("dim", None)
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    return list(dim) if isinstance(dim, (list, tuple)) else [dim]


def _reduction_rule(tracer, func, args, kwargs, outs):
    source = args[0]
    dims = _reduced_dims(_bind(func, args, kwargs), source.dim())
    groups = _groups(tuple(source.shape), dims)
    reduced = _group_matrix(groups, source.numel()) @ tracer.deps_of(source).astype(np.int32)
    return [reduced] * len(outs)


def _elementwise_loss_rule(tracer, func, args, kwargs, outs):
    """mse_loss, l1_loss, huber_loss...: elementwise, then reduced unless reduction is 'none' (0)."""
    elementwise = _pointwise_rule(tracer, func, args, kwargs, [torch.broadcast_tensors(args[0], args[1])[0]])[0]
    if _bind(func, args, kwargs).get("reduction", 1) == 0:
        return [elementwise]
    return [_all_rows(elementwise, outs[0].numel())]


def _all_rows(deps, rows):
    union = sp.csr_array(np.asarray(deps.sum(axis=0)).reshape(1, -1) > 0)
    return sp.csr_array(np.ones((rows, 1), dtype=bool)) @ union


def _mix_along_dim_rule(tracer, func, args, kwargs, outs):
    """softmax, cumsum, sort...: every output along `dim` may depend on the whole slice (conservative)."""
    source = args[0]
    dim = _reduced_dims(_bind(func, args, kwargs), source.dim())
    reduced = _reduction_rule(tracer, func, args, kwargs, outs[:1])[0]
    results = []
    for out in outs:
        kept_shape = [s for d, s in enumerate(out.shape) if d not in [x % max(out.dim(), 1) for x in dim]]
        group = torch.arange(max(math.prod(kept_shape), 1)).reshape(kept_shape)
        for d in sorted(x % max(out.dim(), 1) for x in dim):
            group = group.unsqueeze(d) if out.dim() else group
        results.append(reduced[group.expand(out.shape).reshape(-1).numpy()])
    return results


def _movement_rule(tracer, func, args, kwargs, outs):
    """Ops whose outputs copy input entries or constants: run them on entry ids to see which.

    Every floating input is replaced by a float64 tensor with its shape, strides and storage
    offset whose *memory locations* hold ids (so expanded, overlapping and strided inputs
    behave exactly as they do, as_strided included), twice, the second time shifted: an output
    that moves by the shift copies a location, one that stays is a constant (padding). A
    location's dependencies are the union over the elements that share it.
    """
    leaves, spec = tree_flatten((args, kwargs))
    floating = [i for i, t in enumerate(leaves) if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex())]
    # absolute locations, storage offset included: as_strided(..., storage_offset) counts from there
    locations = [_memory_locations(leaves[i]) + leaves[i].storage_offset() for i in floating]
    sizes = [int(where.max()) + 1 if where.size else 0 for where in locations]
    offsets = np.cumsum([0] + sizes)
    shift = float(offsets[-1] + 1)

    def run(base):
        replaced = list(leaves)
        for i, offset, size in zip(floating, offsets, sizes):
            storage = torch.arange(size, dtype=torch.float64) + float(offset) + base
            replaced[i] = storage.as_strided(leaves[i].shape, leaves[i].stride(), leaves[i].storage_offset())
        new_args, new_kwargs = tree_unflatten(replaced, spec)
        return [t for t in tree_flatten(func(*new_args, **new_kwargs))[0] if isinstance(t, torch.Tensor)]

    first, second = run(1.0), run(1.0 + shift)
    location_deps = sp.vstack([_select(where, np.arange(len(where)), size, len(where)).tocsr()
                               @ tracer.deps_of(leaves[i]).astype(np.int32)
                               for i, where, size in zip(floating, locations, sizes)]).tocsr()
    covered = np.zeros(location_deps.shape[0], dtype=bool)
    for where, offset in zip(locations, offsets):
        covered[where + offset] = True
    results = []
    for a, b in zip(first, second):
        a, b = a.reshape(-1).numpy(), b.reshape(-1).numpy()
        moved = b - a
        if not np.all((moved == 0) | (moved == shift)):
            raise ValueError("an output mixes several entries: not a movement")
        copied = np.flatnonzero(moved == shift)
        source = (a[copied] - 1).astype(np.int64)
        if not covered[source].all():
            raise ValueError("an output reads memory outside its inputs' elements")
        results.append(_select(copied, source, len(a), location_deps.shape[0]) @ location_deps)
    return results


def _memory_locations(tensor) -> np.ndarray:
    """For each element in row-major order, its memory location relative to the tensor's first."""
    if tensor.numel() == 0:
        return np.zeros(0, dtype=np.int64)
    where = np.zeros((), dtype=np.int64)
    for size, stride in zip(tensor.shape, tensor.stride()):
        where = where[..., None] + np.arange(size, dtype=np.int64) * stride
    return where.reshape(-1)


def _mask(tracer, tensor) -> np.ndarray:
    """Entries that may be nonzero: nonzero here, or depending on the input."""
    if torch._is_zerotensor(tensor):
        mask = np.zeros(tensor.numel(), dtype=bool)
    else:
        mask = (tensor != 0).reshape(-1).numpy().copy()
    if tracer.tracked(tensor):
        mask |= np.diff(tracer.deps_of(tensor).indptr) > 0
    return mask.reshape(tensor.shape)


def _matmul_operand(tracer, tensor, as_left):
    """(deps, mask of shape (batch, rows, cols)) of a matmul operand; a 1-D operand is a row
    (left) or a column (right). Reshaping keeps the row-major order, so the deps rows stay."""
    mask = _mask(tracer, tensor)
    if tensor.dim() == 1:
        mask = mask.reshape(1, 1, -1) if as_left else mask.reshape(1, -1, 1)
    elif tensor.dim() == 2:
        mask = mask[None]
    return tracer.deps_of(tensor).astype(np.int32), mask


def _batched_matmul_deps(tracer, left, right):
    """(batch, m, k) @ (batch, k, p): out[z, i, j] gets A[z, i, q] if B[z, q, j] may be nonzero, and vice versa."""
    (a_deps, a_mask), (b_deps, b_mask) = left, right
    batch, m, k = a_mask.shape
    p = b_mask.shape[2]
    terms = sp.csr_array((batch * m * p, tracer.num_inputs), dtype=np.int32)
    if a_deps.nnz:
        z, q, j = np.nonzero(b_mask)
        i = np.arange(m)
        out = ((z[:, None] * m + i) * p + j[:, None]).reshape(-1)
        src = ((z[:, None] * m + i) * k + q[:, None]).reshape(-1)
        terms = terms + _select(out, src, batch * m * p, a_deps.shape[0]) @ a_deps
    if b_deps.nnz:
        z, i, q = np.nonzero(a_mask)
        j = np.arange(p)
        out = ((z[:, None] * m + i[:, None]) * p + j).reshape(-1)
        src = ((z[:, None] * k + q[:, None]) * p + j).reshape(-1)
        terms = terms + _select(out, src, batch * m * p, b_deps.shape[0]) @ b_deps
    return terms


def _select(rows, cols, m, n):
    return sp.csr_array((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(m, n))


def _matmul_rule(tracer, func, args, kwargs, outs):
    """mm, bmm, mv, dot, vdot and their add* forms; addbmm also sums over the batch."""
    name = func.overloadpacket.__name__
    with_bias = name in ("addmm", "addmv", "baddbmm", "addbmm")
    bias, a, b = (args[0], args[1], args[2]) if with_bias else (None, args[0], args[1])
    deps = _batched_matmul_deps(tracer, _matmul_operand(tracer, a, True), _matmul_operand(tracer, b, False))
    if name == "addbmm":
        batch = a.shape[0]
        deps = _group_matrix(_groups((batch, outs[0].numel()), [0]), deps.shape[0]) @ deps
    if bias is not None and tracer.tracked(bias):
        deps = deps + _broadcast(tracer, bias, outs[0].shape).astype(np.int32)
    if deps.shape[0] != outs[0].numel():
        raise ValueError(f"{name}: {deps.shape[0]} dependency rows for {outs[0].numel()} outputs")
    return [deps]


def _convolution_rule(tracer, func, args, kwargs, outs):
    """Non-transposed convolution: find each output's input window with one-hot kernels on entry ids."""
    x, weight, bias, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    if transposed or x.dim() != weight.dim():
        tracer.unknown.add("convolution (transposed or unbatched)")
        return dense_rule(tracer, func, args, kwargs, outs)
    batch, channels = x.shape[:2]
    out_channels, per_group = weight.shape[:2]
    taps = math.prod(weight.shape[2:])
    one_hot = torch.eye(taps, dtype=torch.float64).reshape(taps, 1, *weight.shape[2:]).repeat(channels, 1, *[1] * (weight.dim() - 2))
    ids = (torch.arange(x.numel(), dtype=torch.float64) + 1).reshape(x.shape)
    windows = aten.convolution(ids, one_hot, None, stride, padding, dilation, False, output_padding, channels)
    positions = math.prod(windows.shape[2:])
    windows = windows.round().to(torch.int64).reshape(batch, channels, taps, positions).numpy()
    channel_of = (np.arange(out_channels)[:, None] // (out_channels // groups)) * per_group + np.arange(per_group)
    source = windows[:, channel_of]  # (batch, out_channels, per_group, taps, positions)
    inside = source > 0
    nb, no, nc, nt, npos = np.indices(source.shape, sparse=True)
    out_index = np.broadcast_to((nb * out_channels + no) * positions + npos, source.shape)
    out_numel = batch * out_channels * positions
    deps = sp.csr_array((out_numel, tracer.num_inputs), dtype=np.int32)
    if tracer.tracked(x):
        keep = inside & _mask(tracer, weight).reshape(out_channels, per_group, taps)[None, :, :, :, None]
        deps = deps + _select(out_index[keep], source[keep] - 1, out_numel, x.numel()) @ tracer.deps_of(x).astype(np.int32)
    if tracer.tracked(weight):
        weight_index = np.broadcast_to((no * per_group + nc) * taps + nt, source.shape)
        deps = deps + _select(out_index[inside], weight_index[inside], out_numel, weight.numel()) @ \
            tracer.deps_of(weight).astype(np.int32)
    if bias is not None and tracer.tracked(bias):
        channel = torch.arange(out_channels).reshape(1, -1, *[1] * (outs[0].dim() - 2)).expand(outs[0].shape)
        deps = deps + tracer.deps_of(bias)[channel.reshape(-1).numpy()].astype(np.int32)
    return [deps]


_MOVEMENT = {
    "view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "transpose", "t", "expand", "slice", "select",
    "index", "index_select", "gather", "cat", "stack", "roll", "flip", "squeeze", "unsqueeze", "narrow",
    "diagonal", "unfold", "as_strided", "constant_pad_nd", "slice_scatter", "select_scatter",
    "diagonal_scatter", "as_strided_scatter", "scatter", "repeat", "split", "split_with_sizes", "unbind",
    "chunk", "movedim", "take", "masked_fill", "tril", "triu", "reflection_pad1d", "reflection_pad2d",
    "replication_pad1d", "replication_pad2d", "zeros_like", "ones_like", "empty_like", "full_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "expand_copy", "view_copy", "permute_copy",
    "slice_copy", "select_copy", "transpose_copy", "unsqueeze_copy", "squeeze_copy", "alias_copy", "alias",
    "detach", "clone", "lift_fresh_copy", "contiguous", "index_put", "select_backward", "slice_backward",
    "diagonal_backward",
}
_REDUCTIONS = {
    "sum", "mean", "prod", "amax", "amin", "max", "min", "logsumexp", "linalg_vector_norm", "norm",
    "var", "std", "var_mean", "std_mean", "nansum", "nanmean", "aminmax",
}
_MIX_ALONG_DIM = {
    "_softmax", "_log_softmax", "softmax", "log_softmax", "cumsum", "cumprod", "logcumsumexp", "cummax",
    "cummin", "sort", "topk",
}
_MATMUL = {"mm", "bmm", "addmm", "mv", "addmv", "dot", "vdot", "baddbmm", "addbmm"}
_ELEMENTWISE_LOSSES = {"mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "soft_margin_loss"}
_LOSS_BACKWARDS = {f"{name}_backward" for name in _ELEMENTWISE_LOSSES}  # out[i]: grad_output, self[i], target[i]
_SPECIAL = {
    "_to_copy": _pointwise_rule, "to": _pointwise_rule, "copy": _pointwise_rule, "copy_": _copy_rule,
    "fill": _constant_rule, "fill_": _constant_rule, "zero": _constant_rule, "zero_": _constant_rule,
    "convolution": _convolution_rule,
}


def rule_for(func, args, kwargs):
    name = func.overloadpacket.__name__
    if name in _SPECIAL:
        return _SPECIAL[name]
    bound = _bind(func, args, kwargs)
    if name in ("index_put", "index_put_") and bound.get("accumulate", False):
        return None  # sums several values into one entry: not a movement
    if name in ("scatter", "scatter_") and bound.get("reduce") is not None:
        return None
    if name.rstrip("_") in _MOVEMENT or name in _MOVEMENT:
        return _movement_rule
    if name in _REDUCTIONS:
        return _reduction_rule
    if name in _MIX_ALONG_DIM:
        return _mix_along_dim_rule
    if name in _MATMUL:
        return _matmul_rule
    if name in _ELEMENTWISE_LOSSES:
        return _elementwise_loss_rule
    if name in _LOSS_BACKWARDS:
        return _pointwise_rule
    if torch.Tag.pointwise in func.tags:
        return _pointwise_rule
    return None
