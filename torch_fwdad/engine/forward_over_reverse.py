"""Forward-over-reverse under torch.autograd.forward_ad: PyTorch's own backward node, with tangents.

`autograd.grad(loss, w, create_graph=True)` inside a `dual_level()` differentiates the
backward of every op in forward mode. The backward reads what PyTorch's node saved, and
PyTorch's `SavedVariable` (torch/csrc/autograd/saved_variable.cpp) saves
  - an input that is not an output as the original tensor object: its tangent is read
    live when the backward runs;
  - an output as its data plus the forward grad it had at save time, which, for an op
    whose tangent torch_fwdad attaches afterwards, is none.

So when an argument carries a tangent and a graph is recorded, the override
  1. calls PyTorch's kernel on the original (dual) arguments with forward grads switched
     off (`torch._C._set_fwd_grad_enabled`): PyTorch builds its node exactly as in plain
     reverse mode, and its saved inputs are the dual tensors;
  2. remembers each output's tangent on that node (`node.metadata`), with the output's
     number, storage and version, and hooks the node;
  3. while the node's backward runs under forward mode, a torch_fwdad rule that receives
     one of those saved outputs (same node, output number, storage and version; no
     tangent of its own) reads the remembered tangent. The backward ops that read saved
     outputs (_cdist_backward, the flash-attention backward, ...) have rules, so the
     output reaches them as an argument;
  4. after the backward ran, a saved output whose tangent no rule asked for was read by
     PyTorch's own backward code instead (a C++ helper such as cholesky_backward): its
     result would be silently wrong, so the hook raises instead (docs/out_of_reach.md);
     in a backward that records no graph it drops those partial tangents instead, so a
     plain backward inside a dual level keeps working.

Outside this case (no dual level, no tangent, no graph recorded, torch.func transforms)
none of this runs.
"""

from __future__ import annotations

import threading

import torch

_METADATA_KEY = "torch_fwdad.output_tangents"


class _Active(threading.local):
    """Records of the nodes whose backward runs now under forward mode (innermost last)."""

    def __init__(self):
        self.records: list[_OutputTangents] = []


_active = _Active()


def recovering() -> bool:
    """Cheap test for the override: is some hooked node's backward running now?"""
    return bool(_active.records)


def records_graph(bound, tensor_args, tensor_list_args) -> bool:
    """Whether this call builds a backward node: grad mode on and some input requires grad,
    outside torch.func transforms (they wrap tensors per level and need none of this)."""
    if not torch.is_grad_enabled() or torch._C._functorch.peek_interpreter_stack() is not None:
        return False
    for i in tensor_args:
        if bound[i] is not None and bound[i].requires_grad:
            return True
    return any(t is not None and t.requires_grad for i in tensor_list_args for t in bound[i])


def call_keeping_input_tangents(call_upstream, keyset, args, kwargs):
    """PyTorch's kernel on the dual arguments with forward grads off: its node saves the
    dual inputs themselves, and its missing forward formula is not consulted."""
    torch._C._set_fwd_grad_enabled(False)
    try:
        return call_upstream(keyset, *args, **kwargs)
    finally:
        torch._C._set_fwd_grad_enabled(True)


def recover_saved_output_tangent(arg: torch.Tensor):
    """The tangent of `arg` if it is a saved output of a node whose backward runs now."""
    node = arg.grad_fn
    if node is None:
        return None
    record = node.metadata.get(_METADATA_KEY)
    if record is None or record not in _active.records:
        return None
    return record.tangent_of(arg)


class _OutputTangents:
    """The tangents torch_fwdad attached to one node's outputs, keyed by output number."""

    def __init__(self, op, level: int, saved_output_nrs: frozenset[int]):
        self.op = op
        self.level = level
        self.saved_output_nrs = saved_output_nrs
        self.by_output_nr: dict[int, tuple[torch.Tensor, int, int]] = {}
        self.read: set[int] = set()

    def add(self, output: torch.Tensor, tangent: torch.Tensor) -> None:
        self.by_output_nr[output.output_nr] = (tangent, output.untyped_storage().data_ptr(), output._version)

    def tangent_of(self, arg: torch.Tensor):
        entry = self.by_output_nr.get(arg.output_nr)
        if entry is None:
            return None
        tangent, storage, version = entry
        if arg.untyped_storage().data_ptr() != storage or arg._version != version or arg.shape != tangent.shape:
            return None
        self.read.add(arg.output_nr)
        return tangent

    def unread_saved_outputs(self) -> list[int]:
        return sorted(nr for nr in self.by_output_nr if nr in self.saved_output_nrs and nr not in self.read)

    # node hooks: pre runs before the node's backward, post after it
    def before_backward(self, grad_outputs):
        if torch.autograd.forward_ad._current_level == self.level and torch._C._is_fwd_grad_enabled():
            self.read.clear()
            _active.records.append(self)

    def after_backward(self, grad_inputs, grad_outputs):
        if self not in _active.records:
            return None
        _active.records.remove(self)
        unread = self.unread_saved_outputs()
        if not unread:
            return None
        if torch.is_grad_enabled():
            raise RuntimeError(
                f"torch_fwdad: forward-mode AD over the backward of {self.op} inside "
                f"torch.autograd.forward_ad.dual_level() (autograd.grad(..., create_graph=True) on "
                f"dual tensors) is not supported: PyTorch's backward reads the op's output "
                f"(output {', '.join(map(str, unread))}) in its own C++ code, where torch_fwdad "
                f"cannot give it its tangent, so the result would be wrong. Use "
                f"torch.func.jvp(torch.func.grad(f), ...) or torch.func.hessian(f), which work."
            )
        # A plain backward (no graph) inside a dual level: the gradients stay right, their
        # partial tangents are dropped rather than handed on wrong.
        return tuple(None if g is None else torch._VF._unpack_dual(g, self.level)[0] for g in grad_inputs)


def remember_output_tangents(op, sig, output, level: int) -> None:
    """Hook the node PyTorch built for `output` (already dual) so its backward can find the
    tangents of the outputs it saved."""
    tensors = [t for t in _flat_tensors(output) if t is not None]
    if not tensors or tensors[0].grad_fn is None:
        return
    # make_dual returned views: their base is the output PyTorch's node saved
    node = tensors[0]._base.grad_fn if tensors[0]._base is not None else tensors[0].grad_fn
    record = _OutputTangents(op, level, _saved_output_nrs(node, sig))
    for dual in tensors:
        primal, tangent = torch._VF._unpack_dual(dual, level)
        base = dual._base if dual._base is not None else dual
        if tangent is not None and base.grad_fn is node:
            record.add(base, tangent)
    if not record.by_output_nr:
        return
    node.metadata[_METADATA_KEY] = record
    node.register_prehook(record.before_backward)
    node.register_hook(record.after_backward)


def _saved_output_nrs(node, sig) -> frozenset[int]:
    """Which outputs the node saved for its backward (PyTorch names them as derivatives.yaml)."""
    return frozenset(i for i, name in enumerate(sig.output_names) if hasattr(node, f"_raw_saved_{name}"))


def _flat_tensors(output):
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for o in output for t in _flat_tensors(o)]
    return []
