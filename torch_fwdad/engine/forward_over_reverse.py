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

import functools
import re
import threading

import torch
from torch._C._functorch import TransformType
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

from . import fast_path
from .rule_table import has_installed_aten_rule
from .schema import output_names
from .tangent_check import differentiable
from .upstream import overload_key, upstream_entries

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
    outside torch.func's grad and jvp transforms (they wrap tensors per level and need none
    of this). vmap alone counts: autograd.functional's vectorize=True vmaps forward_ad."""
    if not torch.is_grad_enabled():
        return False
    # the cheap test first: listing torch.func's interpreters costs ~10 us per call
    if not (any(bound[i] is not None and bound[i].requires_grad for i in tensor_args)
            or any(t is not None and t.requires_grad for i in tensor_list_args for t in bound[i] or ())):
        return False
    return _only_vmap_transforms()


def _only_vmap_transforms() -> bool:
    if torch._C._functorch.peek_interpreter_stack() is None:
        return True
    return all(i.key() == TransformType.Vmap for i in retrieve_all_functorch_interpreters())


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
    if node is not None:
        record = node.metadata.get(_METADATA_KEY)
        return record.tangent_of(arg) if record is not None and record in _active.records else None
    for record in reversed(_active.records):
        tangent = record.tangent_of(arg)
        if tangent is not None:
            return tangent
    return None


class _OutputTangents:
    """The tangents torch_fwdad attached to one node's outputs.

    A differentiable output comes back from the saved variable as a new tensor with the
    node as grad_fn and its output number; an output PyTorch declares non-differentiable
    (attention's logsumexp) has no grad_fn and is saved as the very tensor object.
    """

    def __init__(self, op, level: int, saved: frozenset[int]):
        self.op = op
        self.level = level
        self.saved = saved  # schema indices of the outputs the node saved
        self.by_output_nr: dict[int, tuple[int, torch.Tensor, int, int]] = {}
        self.originals: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.read: set[int] = set()
        self.indirect: list[str] = []  # "x2 reads result.mT().contiguous()": no rule sees it
        self.replay: _Replay | None = None  # how to get the tangents where no rule sees the output
        self.no_replay = ""

    def add(self, index: int, output: torch.Tensor, tangent: torch.Tensor, node) -> None:
        if output.grad_fn is node:
            storage = output.untyped_storage().data_ptr()
            self.by_output_nr[output.output_nr] = (index, tangent, storage, output._version)
        elif output.grad_fn is None:
            self.originals.append((index, output, tangent))

    def __bool__(self) -> bool:
        return bool(self.by_output_nr or self.originals)

    def tangent_of(self, arg: torch.Tensor):
        if arg.grad_fn is None:
            for index, original, tangent in self.originals:
                if arg is original:
                    self.read.add(index)
                    return tangent
            return None
        entry = self.by_output_nr.get(arg.output_nr)
        if entry is None:
            return None
        index, tangent, storage, version = entry
        if arg.untyped_storage().data_ptr() != storage or arg._version != version or arg.shape != tangent.shape:
            return None
        self.read.add(index)
        return tangent

    def given(self) -> set[int]:
        return {entry[0] for entry in self.by_output_nr.values()} | {entry[0] for entry in self.originals}

    def unread_saved_outputs(self) -> list[int]:
        return sorted(i for i in self.given() if i in self.saved and i not in self.read)

    # node hooks: pre runs before the node's backward, post after it
    def before_backward(self, grad_outputs):
        if torch.autograd.forward_ad._current_level == self.level and torch._C._is_fwd_grad_enabled():
            self.read.clear()
            _active.records.append(self)
            fast_path.enter_recovery()

    def after_backward(self, grad_inputs, grad_outputs):
        if self not in _active.records:
            return None
        _active.records.remove(self)
        fast_path.exit_recovery()
        unread = [f"output {i}" for i in self.unread_saved_outputs()]
        if not unread and not self.indirect:
            return None
        if self.replay is not None:
            # PyTorch's gradients (bitwise), with the tangents torch.func gives them
            return self.replay.tangents_for(grad_inputs, grad_outputs, self.level)
        if torch.is_grad_enabled():
            raise RuntimeError(
                f"torch_fwdad: forward-mode AD over the backward of {self.op} inside "
                f"torch.autograd.forward_ad.dual_level() (autograd.grad(..., create_graph=True) on "
                f"dual tensors) is not supported: PyTorch's backward reads the op's output "
                f"({'; '.join(self.indirect + unread)}) in its own C++ code, where torch_fwdad "
                f"cannot give it its tangent, and {self.no_replay}. Use "
                f"torch.func.jvp(torch.func.grad(f), ...) or torch.func.hessian(f)."
            )
        # A plain backward (no graph) inside a dual level: the gradients stay right, their
        # partial tangents are dropped rather than handed on wrong.
        return tuple(None if g is None else torch._VF._unpack_dual(g, self.level)[0] for g in grad_inputs)


class _Replay:
    """The tangents of a node's gradients by torch.func, where the node's own backward
    reads an output in C++ code: jvp of vjp of the op at the saved dual inputs and the
    incoming dual gradients. The gradients themselves stay the node's (bitwise PyTorch's);
    the op runs once more (forward, backward and their JVPs) to get their tangents.
    """

    def __init__(self, op, sig, bound, edges, outputs):
        self.op, self.sig, self.bound = op, sig, bound
        self.edges = edges  # (argument index, list index or None) per gradient the node returns
        self.outputs = outputs  # ((schema index, list index or None), shape, dtype) per node output, by output_nr

    def tangents_for(self, grad_inputs, grad_outputs, level):
        if len(grad_inputs) != len(self.edges) or len(grad_outputs) != len(self.outputs):
            raise RuntimeError(f"torch_fwdad: forward-mode AD over the backward of {self.op}: the node's "
                               f"gradients do not line up with its inputs; use torch.func.jvp(torch.func.grad(f), ...)")
        # torch.func.vjp on the level's dual tensors: forward mode sees through the grad
        # transform (torch.func.jvp cannot nest inside a dual level)
        xs = [self._arg(i, j) for i, j in self.edges]
        us = [torch.zeros(shape, dtype=dtype) if u is None else u for u, (_, shape, dtype) in zip(grad_outputs, self.outputs)]

        def outputs_of(*values):
            args = [list(a) if isinstance(a, list) else a for a in self.bound]
            for (i, j), value in zip(self.edges, values):
                if j is None:
                    args[i] = value
                else:
                    args[i][j] = value
            pos, kw = self.sig.split(args)
            out = self.op(*pos, **kw)
            out = out if isinstance(out, tuple) else (out,)
            return tuple(out[k] if j is None else out[k][j] for (k, j), _, _ in self.outputs)

        _, pullback = torch.func.vjp(outputs_of, *xs)
        replayed = pullback(tuple(us))
        return tuple(None if g is None else torch._VF._make_dual(torch._VF._unpack_dual(g, level)[0], _tangent_or_zeros(r, level), level)
                     for g, r in zip(grad_inputs, replayed))

    def _arg(self, i, j):
        return self.bound[i] if j is None else self.bound[i][j]


def _tangent_or_zeros(t, level):
    tangent = torch._VF._unpack_dual(t, level)[1]
    return torch.zeros_like(t) if tangent is None else tangent


def _replay_for(op, sig, bound, node, output) -> tuple[_Replay | None, str]:
    """A replay for this node, or None and why there can be none."""
    if torch.Tag.nondeterministic_seeded in op.tags:
        return None, "the op is random, so running it again would not give the same values"
    entry = upstream_entries().get(overload_key(op))
    if entry is None:
        return None, "torch's derivatives table has no entry for it"
    differentiable = set()
    for key, formula in entry.items():
        if key not in ("name", "dispatch", "output_differentiability") and formula != "non_differentiable":
            differentiable |= {k.strip() for k in key.split(",")}
    edges = []
    for i, name in enumerate(sig.arg_names):
        if name in differentiable:
            arg = bound[i]
            edges += [(i, j) for j in range(len(arg))] if isinstance(arg, (list, tuple)) else [(i, None)]
    outputs = []
    for position, dual in _flat_outputs(output, positions=True):
        base = dual._base if dual._base is not None else dual
        if base.grad_fn is node:
            outputs.append((base.output_nr, position, base.shape, base.dtype))
    return _Replay(op, sig, list(bound), edges, [(p, s, d) for _, p, s, d in sorted(outputs, key=lambda o: o[0])]), ""


def remember_output_tangents(op, sig, output, level: int, bound) -> None:
    """Hook the node(s) PyTorch built for `output` (already dual) so their backward can
    find the tangents of the outputs they saved."""
    records = {}
    for index, dual in _flat_outputs(output):
        # a nested output's tangent is kept beside it (engine/nested.py), not on it
        if not differentiable(dual) or dual.is_nested:
            continue
        tangent = torch._VF._unpack_dual(dual, level)[1]
        # make_dual returned a view: its base is the output PyTorch's node saved
        base = dual._base if dual._base is not None else dual
        node = base.grad_fn
        if tangent is None:
            continue
        if node is None:  # non-differentiable output: saved (if at all) as this very tensor
            node = _first_node(output)
            if node is None:
                continue
        if node not in records:
            records[node] = _OutputTangents(op, level, _saved_outputs(node, sig))
        records[node].add(index, base, tangent, node)
    for node, record in records.items():
        record.indirect = _indirect_reads(op, sig, bound, record)
        if record.indirect or any(i in record.saved for i in record.given()):
            record.replay, record.no_replay = _replay_for(op, sig, bound, node, output)
        if record:
            node.metadata[_METADATA_KEY] = record
            node.register_prehook(record.before_backward)
            node.register_hook(record.after_backward)


def _indirect_reads(op, sig, bound, record) -> list[str]:
    """Backward formulas, of inputs that require grad, that read a tangent-carrying saved
    output other than as a direct argument of an op with a torch_fwdad rule (cdist's x2
    reads result.mT().contiguous(), cholesky's reads L in cholesky_backward): the
    tangent cannot reach them, so the node refuses forward mode over its backward."""
    with_tangent = {sig.output_names[i] for i in record.given()}
    requires_grad = {name for name, arg in zip(sig.arg_names, bound) if _requires_grad(arg)}
    found = []
    for inputs, reads in upstream_backward_reads(op).items():
        if not requires_grad & set(inputs):
            continue
        for output, callee, text in reads:
            if output in with_tangent and not _has_rule(callee):
                found.append(f"the gradient of {', '.join(inputs)} reads {text}")
    return found


def _requires_grad(arg) -> bool:
    if isinstance(arg, torch.Tensor):
        return arg.requires_grad
    return isinstance(arg, (list, tuple)) and any(isinstance(a, torch.Tensor) and a.requires_grad for a in arg)


def _has_rule(callee: str | None) -> bool:
    return callee is not None and has_installed_aten_rule(callee)


@functools.lru_cache(maxsize=None)
def upstream_backward_reads(op) -> dict[tuple[str, ...], tuple[tuple[str, str | None, str], ...]]:
    """From torch's packaged derivatives.yaml: inputs -> (output, callee, text) for every
    place the backward formula of those inputs reads an output; callee is the op the
    output is passed to directly as an argument, else None."""
    entry = upstream_entries().get(overload_key(op))
    if entry is None:
        return {}
    outputs = set(output_names(op._schema))
    reads = {}
    for key, formula in entry.items():
        inputs = tuple(k.strip() for k in key.split(","))
        if key in ("name", "dispatch", "output_differentiability", "result") or outputs & set(inputs) \
                or not isinstance(formula, str) or formula == "non_differentiable":
            continue
        found = []
        for match in re.finditer(r"\b(\w+)\b", formula):
            if match.group(1) in outputs:
                found.append((match.group(1), _direct_callee(formula, match.start(), match.end()),
                              _argument_text(formula, match.start())))
        if found:
            reads[inputs] = tuple(found)
    return reads


def _direct_callee(formula: str, start: int, end: int) -> str | None:
    """The function whose direct argument formula[start:end] is, or None."""
    before, after = formula[:start].rstrip(), formula[end:].lstrip()
    if not before.endswith(("(", ",")) or not after.startswith((",", ")")):
        return None
    depth = 0
    for i in range(start - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(formula[i], 0)
        if depth < 0:
            callee = re.search(r"(\w+)\s*$", formula[:i])
            return None if callee is None else callee.group(1).removesuffix("_symint")
    return None


def _argument_text(formula: str, start: int) -> str:
    match = re.match(r"\w+(?:\.\w+\(\)|\[\w+\])*", formula[start:])
    return match.group(0) if match else formula[start:start + 20]


def _first_node(output):
    for _, dual in _flat_outputs(output):
        base = dual._base if dual._base is not None else dual
        if base.grad_fn is not None:
            return base.grad_fn
    return None


def _saved_outputs(node, sig) -> frozenset[int]:
    """Which outputs the node saved for its backward (PyTorch names them as derivatives.yaml)."""
    return frozenset(i for i, name in enumerate(sig.output_names) if hasattr(node, f"_raw_saved_{name}"))


def _flat_outputs(output, positions: bool = False) -> list[tuple[object, torch.Tensor]]:
    """(schema output index, tensor) for every tensor output, Tensor[] outputs included;
    with positions, ((schema index, list index or None), tensor)."""
    outputs = output if isinstance(output, tuple) else (output,)
    flat = []
    for index, o in enumerate(outputs):
        items = enumerate(o) if isinstance(o, list) else [(None, o)]
        for j, tensor in items:
            if isinstance(tensor, torch.Tensor):
                flat.append(((index, j) if positions else index, tensor))
    return flat
