"""Forward rules for PyTorch's functional collectives and the in-place c10d collectives.

Each rule issues the same collective on the tangent and waits for it, so a tangent is
never an in-flight buffer (the primal output stays in flight, as upstream returns it).
Collectives are linear for sum and avg; max/min take the tangent of the selected element
(ties share it evenly, like `amax`), product the sum over ranks of each tangent times the
other ranks' values.
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as _fwad
import torch.distributed as dist
import torch.distributed._functional_collectives as fc  # registers the reverse-mode kernels our rules sit on
from torch.distributed.distributed_c10d import _resolve_process_group

from .switches import KernelSwitch, rule_switch, switch

functional = torch.ops._c10d_functional
functional_autograd = torch.ops._c10d_functional_autograd

LINEAR_REDUCTIONS = frozenset({"sum", "avg"})
SELECTING_REDUCTIONS = frozenset({"max", "min"})


def wait(tensor: torch.Tensor) -> torch.Tensor:
    return functional.wait_tensor(tensor)


def group_of(group_name) -> dist.ProcessGroup:
    return _resolve_process_group(group_name) if isinstance(group_name, str) else group_name


# --- all_reduce -------------------------------------------------------------------------


def all_reduce_tangent(x, t, reduce_op: str, group_name, reduced=None):
    """Tangent of all_reduce(x, reduce_op) for the rank's tangent `t`."""
    reduce_op = reduce_op.lower()
    if reduce_op in LINEAR_REDUCTIONS:
        return wait(functional.all_reduce(t.contiguous(), reduce_op, group_name))
    if reduce_op in SELECTING_REDUCTIONS:
        if reduced is None:
            reduced = wait(functional.all_reduce(x.contiguous(), reduce_op, group_name))
        return selected_tangent(x, t, reduced, lambda v: wait(functional.all_reduce(v, "sum", group_name)))
    if reduce_op == "product":
        return product_tangent(x, t, group_name)
    raise NotImplementedError(
        f"torch_fwdad: forward-mode AD through all_reduce with reduce_op={reduce_op!r} is not "
        f"supported (only sum, avg, max, min and product are differentiable)"
    )


def selected_tangent(x, t, reduced, sum_over_ranks):
    """max/min: the tangents of the ranks holding the extreme value, averaged over ties."""
    selected = (x == reduced).to(t.dtype)
    return sum_over_ranks((t * selected).contiguous()) / sum_over_ranks(selected.contiguous())


def product_tangent(x, t, group_name):
    """d(prod_r x_r) = sum_r t_r prod_{s != r} x_s, exact where some x_s are zero.

    The products of the other ranks come from exclusive cumulative products over the
    gathered values (division by x would fail at zeros).
    """
    world = dist.get_world_size(group_of(group_name))
    rank = dist.get_rank(group_of(group_name))
    gathered = wait(functional.all_gather_into_tensor(x.contiguous(), world, group_name)).view(world, *x.shape)
    ones = torch.ones_like(gathered[:1])
    before = torch.cat([ones, gathered[:-1]]).cumprod(0)
    after = torch.cat([gathered[1:], ones]).flip(0).cumprod(0).flip(0)
    others = before[rank] * after[rank]
    return wait(functional.all_reduce((t * others).contiguous(), "sum", group_name))


def _all_reduce_jvp(primals, tangents, output):
    x, reduce_op, group_name = primals
    reduced = wait(output) if reduce_op.lower() in SELECTING_REDUCTIONS else None
    return all_reduce_tangent(x, tangents[0], reduce_op, group_name, reduced)


def _all_reduce_coalesced_jvp(primals, tangents, output):
    inputs, reduce_op, group_name = primals
    return [
        None if t is None else all_reduce_tangent(x, t, reduce_op, group_name, wait(y) if reduce_op.lower() in SELECTING_REDUCTIONS else None)
        for x, t, y in zip(inputs, tangents[0], output)
    ]


# --- gather / scatter / all-to-all / broadcast ------------------------------------------


def _all_gather_jvp(primals, tangents, output):
    _, group_size, group_name = primals
    return wait(functional.all_gather_into_tensor(tangents[0].contiguous(), group_size, group_name))


def _all_gather_coalesced_jvp(primals, tangents, output):
    inputs, group_size, group_name = primals
    return [
        torch.zeros_like(y) if t is None else wait(functional.all_gather_into_tensor(t.contiguous(), group_size, group_name))
        for t, y in zip(tangents[0], output)
    ]


def reduce_scatter_tangent(x, t, reduce_op: str, group_size: int, group_name):
    reduce_op = reduce_op.lower()
    if reduce_op in LINEAR_REDUCTIONS:
        return wait(functional.reduce_scatter_tensor(t.contiguous(), reduce_op, group_size, group_name))
    # Nonlinear: this rank's chunk of the all_reduce tangent (costs a full all_reduce).
    full = all_reduce_tangent(x, t, reduce_op, group_name)
    rank = dist.get_rank(group_of(group_name))
    return full.chunk(group_size)[rank].contiguous()


def _reduce_scatter_jvp(primals, tangents, output):
    x, reduce_op, group_size, group_name = primals
    return reduce_scatter_tangent(x, tangents[0], reduce_op, group_size, group_name)


def _reduce_scatter_coalesced_jvp(primals, tangents, output):
    inputs, reduce_op, group_size, group_name = primals
    return [
        None if t is None else reduce_scatter_tangent(x, t, reduce_op, group_size, group_name)
        for x, t in zip(inputs, tangents[0])
    ]


def _all_to_all_jvp(primals, tangents, output):
    _, output_split_sizes, input_split_sizes, group_name = primals
    return wait(functional.all_to_all_single(tangents[0].contiguous(), output_split_sizes, input_split_sizes, group_name))


def _broadcast_jvp(primals, tangents, output):
    _, src, group_name = primals
    return wait(functional.broadcast(tangents[0].contiguous(), src, group_name))


def _identity_jvp(primals, tangents, output):
    # wait_tensor: the tangent is never in flight (every rule here waits).
    return tangents[0]


def wrap_tensor_kernel(captured):
    """_wrap_tensor_autograd: identity tangent, which also rides on the wrapper's `elem`.

    `AsyncCollectiveTensor.wait()` calls wait_tensor on `.elem` directly (no dispatch
    through the wrapper), which would drop the tangent (all_gather_tensor with
    gather_dim != 0 waits that way); with `elem` dual, wait_tensor's rule carries it on.
    Making the wrapper dual creates a new wrapper (a view), so this is a kernel of its
    own rather than a register_jvp rule, which cannot touch the dual output.
    """

    def kernel(keyset, input):
        level = _fwad._current_level
        if level < 0:
            return captured.call_boxed(keyset, input)
        primal, tangent = torch._VF._unpack_dual(input, level)
        if tangent is None:
            return captured.call_boxed(keyset, input)
        dual = torch._VF._make_dual(captured.call_boxed(keyset, primal), tangent, level)
        if isinstance(getattr(dual, "elem", None), torch.Tensor):
            dual.elem = torch._VF._make_dual(dual.elem, tangent, level)
        return dual

    return kernel


class _Boxed:
    """A Python kernel in the shape wrap_tensor_kernel calls (`call_boxed`)."""

    def __init__(self, fn):
        self.call_boxed = fn


def upstream_autograd_kernel(op, name: str):
    """The Autograd kernel _functional_collectives registered for `op`, built the same way.

    Not captured from the dispatcher: a Python kernel registered with torch.library is
    called through a per-(operator, key) table whenever an argument is a tensor subclass
    (an AsyncCollectiveTensor) or a dispatch mode is active, and our registration replaces
    that table entry, so the captured kernel would call our override again (recursion).
    """
    info = torch._library.autograd.Info(getattr(fc, f"{name}_backward"), getattr(fc, f"{name}_setup_context"))
    return torch._library.autograd.make_autograd_impl(op, info)


def register_functional_rules() -> None:
    rules = {  # op: (rule, name of its backward in _functional_collectives)
        functional.all_reduce.default: (_all_reduce_jvp, "all_reduce"),
        functional.all_reduce_coalesced.default: (_all_reduce_coalesced_jvp, "all_reduce_coalesced"),
        functional.all_gather_into_tensor.default: (_all_gather_jvp, "all_gather_into_tensor"),
        functional.all_gather_into_tensor_coalesced.default: (_all_gather_coalesced_jvp, "all_gather_into_tensor_coalesced"),
        functional.reduce_scatter_tensor.default: (_reduce_scatter_jvp, "reduce_scatter_tensor"),
        functional.reduce_scatter_tensor_coalesced.default: (_reduce_scatter_coalesced_jvp, "reduce_scatter_tensor_coalesced"),
        functional.all_to_all_single.default: (_all_to_all_jvp, "all_to_all_single"),
        functional.wait_tensor.default: (_identity_jvp, "wait_tensor"),
        functional_autograd.all_gather_into_tensor.default: (_all_gather_jvp, "all_gather_into_tensor"),
        functional_autograd.reduce_scatter_tensor.default: (_reduce_scatter_jvp, "reduce_scatter_tensor"),
        functional_autograd.all_to_all_single.default: (_all_to_all_jvp, "all_to_all_single"),
    }
    for op, (rule, name) in rules.items():
        upstream = upstream_autograd_kernel(op, name)
        switch(rule_switch(op, rule, upstream, restore=upstream))
    # broadcast has no reverse mode upstream (its Autograd kernel is PyTorch's C++ fallback).
    switch(rule_switch(functional.broadcast.default, _broadcast_jvp))
    wrap = functional._wrap_tensor_autograd.default
    wrap_upstream = torch._library.autograd.make_autograd_impl(wrap, fc._wrap_tensor_autograd)
    switch(KernelSwitch(wrap, lambda _captured: wrap_tensor_kernel(_Boxed(wrap_upstream)), restore=wrap_upstream))
