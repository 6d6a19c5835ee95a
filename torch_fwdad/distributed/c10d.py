"""Forward rules for the in-place collectives behind torch.distributed.all_reduce & co.

These ops write into their tensor arguments, so a rule here updates the tangents in
place: the same collective runs on the tangent tensors (which are the duals' own tangent
storage) and is waited for before the op returns. Where the collective writes into a
tensor without a tangent (the output of all_gather_into_tensor), the rule gives it one
in place. Nonlinear in-place reductions (max, min, product) would need the values the
op has already overwritten: they raise and name the functional collective to use.
dist.reduce_scatter_tensor has a kernel of its own (see reduce_scatter_base_kernel).
Every other c10d collective raises when a tangent reaches it, rather than pass the
tangent through unchanged (what PyTorch does, silently wrong on every rank).
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as _fwad
import torch.distributed as dist

from .switches import KernelSwitch, released_gil_upstream, rule_switch, switch

c10d = torch.ops.c10d
functional = torch.ops._c10d_functional  # the in-place ones; loaded with torch, not _functional_collectives

LINEAR_OPS = {int(dist.ReduceOp.SUM): "sum", int(dist.ReduceOp.AVG): "avg"}
FUNCTIONAL_INSTEAD = (
    "use the functional collectives of torch.distributed._functional_collectives "
    "(all_reduce, all_gather_tensor, reduce_scatter_tensor, all_to_all_single, broadcast), "
    "which have forward rules"
)


def _linear_reduce_op(op, reduce_op) -> None:
    if reduce_op.op() not in LINEAR_OPS:
        name = dist.ReduceOp.RedOpType(reduce_op.op()).name
        raise NotImplementedError(
            f"torch_fwdad: forward-mode AD through the in-place {op} with ReduceOp.{name} is not "
            f"supported (the op overwrites the values the tangent depends on); {FUNCTIONAL_INSTEAD}"
        )


def _set_tangent_in_place(tensor, tangent, new_tangent) -> None:
    """Make `tensor`'s tangent `new_tangent`: in its own storage, or by giving it one."""
    if tangent is not None:
        tangent.copy_(new_tangent)
    else:  # copying a dual of the same values attaches the tangent; values stay bitwise the same
        tensor.copy_(_fwad.make_dual(tensor.clone(), new_tangent))


def _allreduce_jvp(primals, tangents, output):
    tensors, group, reduce_op, sparse_indices, _, timeout = primals
    _linear_reduce_op(c10d.allreduce_.default, reduce_op)
    tangent_buffers = [torch.zeros_like(x) if t is None else t for x, t in zip(tensors, tangents[0])]
    c10d.allreduce_.default(tangent_buffers, group, reduce_op, sparse_indices, False, timeout)[1].wait()
    output[1].wait()  # the primal values, read when a tangent is attached in place
    for x, t, new in zip(tensors, tangents[0], tangent_buffers):
        if t is None:
            _set_tangent_in_place(x, None, new)
    return None, None


def _broadcast_jvp(primals, tangents, output):
    tensors, group, root_rank, root_tensor, _, timeout = primals
    tangent_buffers = [torch.zeros_like(x) if t is None else t for x, t in zip(tensors, tangents[0])]
    c10d.broadcast_.default(tangent_buffers, group, root_rank, root_tensor, False, timeout)[1].wait()
    output[1].wait()
    for x, t, new in zip(tensors, tangents[0], tangent_buffers):
        if t is None:
            _set_tangent_in_place(x, None, new)
    return None, None


def _require_input_tangent(op, tangents) -> None:
    # The rule runs because some argument is dual; if only the output is, its new tangent
    # is unknown, and a zero would be silent.
    if tangents[1] is None:
        raise NotImplementedError(
            f"torch_fwdad: forward-mode AD through {op}: the input reached the collective without "
            f"its tangent, so the output's tangent is unknown; {FUNCTIONAL_INSTEAD}"
        )


def _allgather_base_jvp(primals, tangents, output):
    out, x, group, _, timeout = primals
    _require_input_tangent(c10d._allgather_base_.default, tangents)
    x_tangent = tangents[1]
    gathered = torch.empty_like(out)
    c10d._allgather_base_.default(gathered, x_tangent.contiguous(), group, False, timeout)[1].wait()
    output[1].wait()
    _set_tangent_in_place(out, tangents[0], gathered)
    return None, None


def reduce_scatter_base_kernel(upstream):
    """c10d::_reduce_scatter_base_ (dist.reduce_scatter_tensor) with tangents.

    Not a register_jvp rule: gloo's Work copies the scattered chunk into the output on
    every `wait()` (measured: a second wait copies again), and the wait that
    torch.distributed makes after the op returns would be a plain `copy_` into the dual
    output, whose forward formula zeros its tangent (the silent zero of this op). So the
    primal is scattered into a scratch buffer and waited for here, the output gets values
    and tangent from it in one dual copy, and the op returns an already completed Work.
    """

    def kernel(keyset, out, x, group, reduce_op, async_op=True, timeout=-1):
        level = _fwad._current_level
        if level < 0:
            return upstream(keyset, out, x, group, reduce_op, async_op, timeout)
        x_primal, x_tangent = torch._VF._unpack_dual(x, level)
        out_tangent = torch._VF._unpack_dual(out, level)[1]
        if x_tangent is None and out_tangent is None:
            return upstream(keyset, out, x, group, reduce_op, async_op, timeout)
        op = c10d._reduce_scatter_base_.default
        _linear_reduce_op(op, reduce_op)
        _require_input_tangent(op, (out_tangent, x_tangent))
        scattered, scattered_tangent = torch.empty_like(out), torch.empty_like(out)
        works = [c10d._reduce_scatter_base_.default(buffer, source, group, reduce_op, True, timeout)[1]
                 for buffer, source in ((scattered, x_primal), (scattered_tangent, x_tangent.contiguous()))]
        for work in works:
            work.wait()
        out.copy_(_fwad.make_dual(scattered, scattered_tangent))
        return out, completed_work()

    return kernel


def completed_work():
    done = torch.futures.Future()
    done.set_result(None)
    return torch._C._distributed_c10d._create_work_from_future(done).boxed()  # ops return the TorchScript class


def _functional_all_reduce_jvp(primals, tangents, output):
    _, reduce_op, group_name = primals
    if reduce_op.lower() not in ("sum", "avg"):
        raise NotImplementedError(
            f"torch_fwdad: forward-mode AD through _c10d_functional::all_reduce_ (in place) with "
            f"reduce_op={reduce_op!r} is not supported; use the out-of-place all_reduce"
        )
    functional.wait_tensor(functional.all_reduce_(tangents[0], reduce_op, group_name))
    return None


def _functional_broadcast_jvp(primals, tangents, output):
    _, src, group_name = primals
    functional.wait_tensor(functional.broadcast_(tangents[0], src, group_name))
    return None


def _refuse(op):
    def rule(primals, tangents, output):
        raise NotImplementedError(
            f"torch_fwdad: forward-mode AD through {op} is not supported: a tangent reached it and "
            f"PyTorch would pass it through unchanged (wrong on every rank); {FUNCTIONAL_INSTEAD}"
        )

    return rule


REFUSED = ("reduce_", "send", "recv_", "recv_any_source_", "alltoall_", "alltoall_base_",
           "allreduce_coalesced_", "allgather_into_tensor_coalesced_", "reduce_scatter_tensor_coalesced_",
           "scatter_", "allgather_", "gather_", "reduce_scatter_", "allgather_coalesced_")


def register_c10d_rules() -> None:
    rules = {
        c10d.allreduce_.default: _allreduce_jvp,
        c10d.broadcast_.default: _broadcast_jvp,
        c10d._allgather_base_.default: _allgather_base_jvp,
        functional.all_reduce_.default: _functional_all_reduce_jvp,
        functional.broadcast_.default: _functional_broadcast_jvp,
        functional.all_gather_into_tensor_out.default: _refuse(functional.all_gather_into_tensor_out.default),
        functional.reduce_scatter_tensor_out.default: _refuse(functional.reduce_scatter_tensor_out.default),
    }
    rules.update({getattr(c10d, name).default: _refuse(getattr(c10d, name).default) for name in REFUSED})
    for op, rule in rules.items():
        switch(rule_switch(op, rule))
    scatter = c10d._reduce_scatter_base_.default
    switch(KernelSwitch(scatter, lambda captured: reduce_scatter_base_kernel(released_gil_upstream(scatter, captured))))
