"""Sparsity detection: numerically (Jacobians at random points) or structurally (tracing).

Structural detection runs `func` once on a real point under a `__torch_dispatch__` mode and
propagates, for every tensor element, the set of input entries it depends on (a boolean
scipy CSR matrix of shape (numel, inputs)). Rules cover pointwise ops (broadcasting),
reductions, ops that mix along one dim (softmax, cumsum, sort), data movement (views,
slicing, indexing, cat, padding, scatter of values), matmul and convolution. Any other op
falls back to "every output depends on every input it sees" and is named in a warning.
Control flow that depends on values follows the traced point (see docs/sparse.md).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten
from torch.utils.weak import WeakIdKeyDictionary

from torch_fwdad.functional.patterns import as_bool_csr, from_coordinates
from torch_fwdad.functional.plans import FlatInputs, hvp_products, jvp_products

aten = torch.ops.aten


# ----------------------------------------------------------------------------- numerical detection

def numeric_pattern(func, x, *, num_points=3, chunk_size=None, seed=0, hessian=False) -> sp.csr_array:
    """Union of the nonzeros of the Jacobian (or Hessian) at `num_points` random points near x.

    Memory stays O(chunk_size * outputs): the identity basis is pushed `chunk_size` columns at a time.
    A nonzero that vanishes at every sampled point is missed (use check="raise" to catch it).
    """
    inputs = FlatInputs.of(x)
    flat_func, x_flat = inputs.flat_function(func), inputs.flatten(x).detach()
    products = hvp_products if hessian else jvp_products
    n = inputs.numel
    generator = torch.Generator().manual_seed(seed)
    rows, cols = [], []
    m = n
    for _ in range(num_points):
        noise = torch.rand(n, generator=generator, dtype=x_flat.real.dtype).to(x_flat)
        point = x_flat + (noise - 0.5) * (x_flat.abs() + 1) * 0.2
        if not hessian:
            with torch.no_grad():
                m = flat_func(point).numel()
        step = chunk_size or max(1, min(n, 2 ** 22 // max(m, 1)))
        for start in range(0, n, step):
            basis = torch.eye(n, dtype=x_flat.dtype, device=x_flat.device)[start:start + step]
            block = products(flat_func, point, basis).reshape(len(basis), -1)
            col, row = (block != 0).nonzero(as_tuple=True)
            rows.append(row.cpu().numpy())
            cols.append(col.cpu().numpy() + start)
    return from_coordinates(np.concatenate(rows), np.concatenate(cols), m, n)


# ----------------------------------------------------------------------------- structural detection

def structural_pattern(func, x) -> sp.csr_array:
    """Trace func once at x and return the (outputs, inputs) dependency pattern."""
    inputs = FlatInputs.of(x)
    parts = tuple(p.detach().clone() for p in (x if inputs.is_tuple else (x,)))
    tracer = _DependencyTracer(inputs.numel)
    offset = 0
    for part in parts:
        rows = np.arange(part.numel())
        tracer.deps[part] = from_coordinates(rows, rows + offset, part.numel(), inputs.numel)
        offset += part.numel()
    # functionalize: writes into views become out-of-place scatters the rules can follow
    with torch.no_grad(), tracer:
        out = torch.func.functionalize(func)(*parts)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"func must return a single tensor, got {type(out).__name__}")
    if tracer.unknown:
        warnings.warn(f"sparsity detection does not know {sorted(tracer.unknown)}: assumed every output "
                      "of these ops depends on every input entry they receive (a denser pattern, still correct)",
                      RuntimeWarning, stacklevel=2)
    return tracer.deps_of(out)


def detect_pattern(func, x, method="detect") -> sp.csr_array:
    if method == "detect-numeric":
        return numeric_pattern(func, x)
    return structural_pattern(func, x)


def detect_hessian_pattern(func, x, method="detect") -> sp.csr_array:
    """Hessian pattern: numerically from HVPs, or structurally as the Jacobian pattern of the gradient
    (tracing torch.func.grad of func, so the backward ops are traced too)."""
    if method == "detect-numeric":
        return numeric_pattern(func, x, hessian=True)
    inputs = FlatInputs.of(x)
    flat_func = inputs.flat_function(func)

    def gradient(flat):
        return torch.func.grad(lambda v: flat_func(v).reshape(()))(flat)
    return structural_pattern(gradient, inputs.flatten(x).detach())


class _DependencyTracer(TorchDispatchMode):
    def __init__(self, num_inputs):
        super().__init__()
        self.num_inputs = num_inputs
        self.deps = WeakIdKeyDictionary()
        self.unknown = set()

    def deps_of(self, tensor) -> sp.csr_array:
        found = self.deps.get(tensor)
        if found is None:
            return sp.csr_array((tensor.numel(), self.num_inputs), dtype=bool)
        return found

    def tracked(self, tensor) -> bool:
        return isinstance(tensor, torch.Tensor) and tensor in self.deps and self.deps[tensor].nnz > 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves, _ = tree_flatten((args, kwargs))
        if not any(self.tracked(t) for t in leaves):
            return out
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        rule = _rule_for(func, args, kwargs)
        if rule is None:
            self.unknown.add(str(func.overloadpacket.__name__))
            rule = _dense_rule
        for tensor, deps in zip(outs, rule(self, func, args, kwargs, outs)):
            if tensor.is_floating_point() or tensor.is_complex():
                self.deps[tensor] = as_bool_csr(deps)
        if func._schema.is_mutable and isinstance(args[0], torch.Tensor) and args[0]._base is not None:
            self.unknown.add(f"{func.overloadpacket.__name__} (in place on a view)")
        return out


# ----------------------------------------------------------------------------- rules

def _bind(func, args, kwargs) -> dict:
    bound = {}
    for i, argument in enumerate(func._schema.arguments):
        if i < len(args):
            bound[argument.name] = args[i]
        elif argument.name in kwargs:
            bound[argument.name] = kwargs[argument.name]
        elif argument.has_default_value():
            bound[argument.name] = argument.default_value
    return bound


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


def _dense_rule(tracer, func, args, kwargs, outs):
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

    Floating inputs are replaced by their ids (float64, exact) twice, the second time shifted:
    an output that moves by the shift is a copied entry, one that stays is a constant (padding).
    """
    leaves, spec = tree_flatten((args, kwargs))
    floating = [i for i, t in enumerate(leaves) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    sizes = [leaves[i].numel() for i in floating]
    offsets = np.cumsum([0] + sizes)
    shift = float(offsets[-1] + 1)

    def run(base):
        replaced = list(leaves)
        for i, offset in zip(floating, offsets):
            ids = torch.arange(leaves[i].numel(), dtype=torch.float64) + float(offset) + base
            replaced[i] = torch.empty_strided(leaves[i].shape, leaves[i].stride(), dtype=torch.float64).copy_(
                ids.reshape(leaves[i].shape))
        new_args, new_kwargs = tree_unflatten(replaced, spec)
        return [t for t in tree_flatten(func(*new_args, **new_kwargs))[0] if isinstance(t, torch.Tensor)]

    first, second = run(1.0), run(1.0 + shift)
    stacked = sp.vstack([tracer.deps_of(leaves[i]) for i in floating]).tocsr()
    results = []
    for a, b in zip(first, second):
        a, b = a.reshape(-1).numpy(), b.reshape(-1).numpy()
        copied = np.flatnonzero(b - a == shift)
        select = sp.csr_array((np.ones(len(copied), dtype=np.int32), (copied, (a[copied] - 1).astype(np.int64))),
                              shape=(len(a), stacked.shape[0]))
        results.append(select @ stacked.astype(np.int32))
    return results


def _mask(tracer, tensor) -> np.ndarray:
    """Entries that may be nonzero: nonzero here, or depending on the input."""
    mask = (tensor != 0).reshape(-1).numpy().copy()
    if tracer.tracked(tensor):
        mask |= np.diff(tracer.deps_of(tensor).indptr) > 0
    return mask.reshape(tensor.shape)


def _batched_matmul_deps(tracer, a, b):
    """(batch, m, k) @ (batch, k, p): out[z, i, j] gets A[z, i, q] if B[z, q, j] may be nonzero, and vice versa."""
    batch, m, k = a.shape
    p = b.shape[2]
    terms = sp.csr_array((batch * m * p, tracer.num_inputs), dtype=np.int32)
    if tracer.tracked(a):
        z, q, j = np.nonzero(_mask(tracer, b))
        i = np.arange(m)
        out = ((z[:, None] * m + i) * p + j[:, None]).reshape(-1)
        src = ((z[:, None] * m + i) * k + q[:, None]).reshape(-1)
        terms = terms + _select(out, src, batch * m * p, a.numel()) @ tracer.deps_of(a).astype(np.int32)
    if tracer.tracked(b):
        z, i, q = np.nonzero(_mask(tracer, a))
        j = np.arange(p)
        out = ((z[:, None] * m + i[:, None]) * p + j).reshape(-1)
        src = ((z[:, None] * k + q[:, None]) * p + j).reshape(-1)
        terms = terms + _select(out, src, batch * m * p, b.numel()) @ tracer.deps_of(b).astype(np.int32)
    return terms


def _select(rows, cols, m, n):
    return sp.csr_array((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(m, n))


def _as_3d(tracer, tensor, shape):
    """A view of `tensor` with its deps, for the matmul rules (the deps follow the flat order)."""
    view = tensor.reshape(shape)
    tracer.deps[view] = tracer.deps_of(tensor) if tracer.tracked(tensor) else sp.csr_array(
        (tensor.numel(), tracer.num_inputs), dtype=bool)
    return view


def _matmul_rule(tracer, func, args, kwargs, outs):
    name = func.overloadpacket.__name__
    bias, (a, b) = (args[0], args[1:3]) if name in ("addmm", "addmv", "baddbmm") else (None, args[:2])
    if a.dim() == 1:
        a = a.reshape(1, -1)
    if b.dim() == 1:
        b = b.reshape(-1, 1)
    a3 = _as_3d(tracer, a, (-1, *a.shape[-2:]) if a.dim() == 3 else (1, *a.shape))
    b3 = _as_3d(tracer, b, (-1, *b.shape[-2:]) if b.dim() == 3 else (1, *b.shape))
    deps = _batched_matmul_deps(tracer, a3, b3)
    if bias is not None and tracer.tracked(bias):
        deps = deps + _broadcast(tracer, bias, outs[0].shape).astype(np.int32)
    return [deps]


def _convolution_rule(tracer, func, args, kwargs, outs):
    """Non-transposed convolution: find each output's input window with one-hot kernels on entry ids."""
    x, weight, bias, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    if transposed or x.dim() != weight.dim():
        tracer.unknown.add("convolution (transposed or unbatched)")
        return _dense_rule(tracer, func, args, kwargs, outs)
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
_MATMUL = {"mm", "bmm", "addmm", "mv", "addmv", "dot", "baddbmm"}
_SPECIAL = {
    "_to_copy": _pointwise_rule, "to": _pointwise_rule, "copy": _pointwise_rule, "copy_": _copy_rule,
    "fill": _constant_rule, "fill_": _constant_rule, "zero": _constant_rule, "zero_": _constant_rule,
    "convolution": _convolution_rule,
}


def _rule_for(func, args, kwargs):
    name = func.overloadpacket.__name__
    if name in _SPECIAL:
        return _SPECIAL[name]
    if name in ("index_put", "index_put_") and _bind(func, args, kwargs).get("accumulate", False):
        return None  # sums several values into one entry: not a movement
    if name.rstrip("_") in _MOVEMENT or name in _MOVEMENT:
        return _movement_rule
    if name in _REDUCTIONS:
        return _reduction_rule
    if name in _MIX_ALONG_DIM:
        return _mix_along_dim_rule
    if name in _MATMUL:
        return _matmul_rule
    if torch.Tag.pointwise in func.tags:
        return _pointwise_rule
    return None
