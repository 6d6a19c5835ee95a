"""The kernel installed on the Autograd key of an overload that gains a forward rule.

Fast path: outside any forward-AD level, or when no argument carries a tangent, the
captured upstream kernel runs with the arguments untouched. Otherwise the upstream
kernel runs on the primals (so PyTorch builds its own backward node exactly as before),
the rule computes the output tangents, and they are attached with `_make_dual`.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.autograd.forward_ad as _fwad

from . import fast_path, forward_over_reverse
from .nested import keep_nested_tangent, nested_tangent
from .schema import OpSignature
from .tangent_check import check_tangent
from .upstream import has_upstream_forward_ad, resolve_overload

# rule(primals, tangents, output) -> tangent or tuple of tangents (None: no tangent)
JvpRule = Callable[[tuple, tuple, object], object]

# PyTorch cannot make a sparse or nested tensor dual (its _make_dual and _fw_primal alias
# storage, which sparse layouts lack; a nested tensor has no sizes to check against), so
# such an argument never carries a tangent, and unpacking one raises: it is passed through
# as a constant (tests/test_sparse_ops.py and tests/test_models_fast_paths.py pin this).
# A nested tensor's tangent, when a rule gave one, is kept beside it (engine/nested.py).
SPARSE_LAYOUTS = frozenset({torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc})


def can_carry_tangent(arg) -> bool:
    return arg is not None and arg.layout not in SPARSE_LAYOUTS and not arg.is_nested


# Kernels PyTorch calls only when no input requires grad: their upstream Autograd kernel
# refuses inputs that do ("Autograd not support dtype: Long", from attaching history to
# integer outputs). torch.func lifts a parameter into a wrapper that does not require grad,
# so F.embedding_bag picks the forward-only kernel although the unwrapped parameter does;
# its primal then runs without recording (it has no reverse mode upstream either).
_FORWARD_ONLY = frozenset({"aten::_embedding_bag_forward_only"})

# Ops whose upstream call a rule's companion runs, by op name: a rule that needs
# intermediates the kernel computes but does not return records them while the kernel runs
# (formulas/transformer.py, the fused encoder layer) instead of computing them again.
_upstream_runners: dict[str, Callable] = {}


def run_upstream_with(op_name: str, runner: Callable) -> None:
    """On calls of `op_name` ("aten::...") with tangents (never on the no-tangent fast path),
    the upstream kernel runs as `runner(call, op, args, kwargs, primals, tangents)`, which
    returns its output; `call()` runs it as the engine otherwise would."""
    _upstream_runners[op_name] = runner


def make_override(op, rule: JvpRule, upstream: Callable, sig: OpSignature, origin: str, *, switch, when=None,
                  screened: bool = False):
    """Build the boxed Python kernel for `op`.

    `upstream(keyset, *args, **kwargs)` runs the Autograd kernel beneath ours; while
    `switch.active` is False every call goes straight to it (see registry._uninstall).
    `when(bound arguments)`: where False, the upstream kernel runs on the original
    arguments (dual ones included), so upstream's own formula applies unchanged.
    `screened`: the C++ kernel above this one (engine/_fast_path.cpp) passes on only calls
    where an argument has a forward grad, so the Python test for one is skipped; a call
    whose tangents live at another level still finds none when unpacking and runs upstream.
    """
    call_upstream = named_upstream(op, upstream)
    probe_without_level = must_probe_without_level(op)
    record = contextlib.nullcontext if op._schema.name not in _FORWARD_ONLY else torch.no_grad
    # A custom op's autograd (register_autograd) may save anything in ctx: its backward
    # cannot be given tangents, so forward-over-reverse through it stays refused.
    keeps_saved_tangents = op.namespace == "aten"
    any_tangent = tangent_test(sig)
    op_name = op._schema.name
    who = f"the forward rule of {op} ({origin})"  # names the rule in errors; formatted once

    def override(keyset, *args, **kwargs):
        if not switch.active:
            return call_upstream(keyset, *args, **kwargs)
        level = tangent_level(keyset)
        # Outside a known level, upstream refuses a tangent we did not see (a compiled
        # program's own level): no need to look for one first.
        refusal_shows_tangents = level < 0 and not probe_without_level
        if level < 0:
            level = HIDDEN_LEVEL
        if refusal_shows_tangents or not (screened or any_tangent(args, kwargs, level)
                                          or forward_over_reverse.recovering()):
            try:  # fast path: no tangent
                return upstream(keyset, *args, **kwargs)
            except NotImplementedError as error:
                if not (refusal_shows_tangents and refused_a_tangent(error)):
                    raise
            except RuntimeError as error:
                raise_if_upstream_vanished(op, error)
                raise_if_nested_under_torch_func(op, error)
                raise
        bound = sig.bind(args, kwargs)
        if when is not None and not when(bound):
            return call_upstream(keyset, *args, **kwargs)
        found = unpack_tangents(sig, bound, level)
        if found is None:
            return call_upstream(keyset, *args, **kwargs)
        bound, tangents = found
        if keeps_saved_tangents and forward_over_reverse.records_graph(bound, sig.tensor_args, sig.tensor_list_args):
            return _forward_over_reverse_ready(op, rule, sig, origin, who, call_upstream, keyset, args, kwargs, bound,
                                               tangents, level)
        pos, kw = sig.split(bound)
        runner = _upstream_runners.get(op_name)
        with record():
            output = call_upstream(keyset, *pos, **kw) if runner is None else runner(
                lambda: call_upstream(keyset, *pos, **kw), op, pos, kw, bound, tangents)
        _guard_plain_forward_over_reverse(op, output)
        return attach_tangents(who, sig, output, _run_rule(op, rule, origin, bound, tangents, output), level)

    return override


def _run_rule(op, rule, origin, bound, tangents, output):
    try:
        return rule(tuple(bound), tuple(tangents), output)
    except Exception as error:
        error.add_note(f"torch_fwdad: while computing the forward-mode tangent of {op} (rule from {origin})")
        raise


def _forward_over_reverse_ready(op, rule, sig, origin, who, call_upstream, keyset, args, kwargs, bound, tangents, level):
    """Tangents present and a graph recorded: PyTorch's node saves the dual inputs, and the
    output tangents are remembered on it for its backward (engine/forward_over_reverse.py)."""
    output = forward_over_reverse.call_keeping_input_tangents(call_upstream, keyset, args, kwargs)
    dual = attach_tangents(who, sig, output, _run_rule(op, rule, origin, bound, tangents, output), level)
    forward_over_reverse.remember_output_tangents(op, sig, dual, level, sig.bind(args, kwargs))
    return dual


# torch._VF resolves names through a Python __getattr__ on every use (~4 us): bind once.
_unpack_dual = torch._C._VariableFunctions._unpack_dual
_make_dual = torch._C._VariableFunctions._make_dual
# PyTorch refuses nested dual levels, so a dual level, when one exists, has index 0.
HIDDEN_LEVEL = 0
_PYTHON_KEY = torch._C.DispatchKey.Python
_peek_interpreter_stack = torch._C._functorch.peek_interpreter_stack


def tangent_level(keyset) -> int:
    """The forward-AD level this call's tangents would live on, or -1 when it can have none.

    `forward_ad._current_level` is set by `dual_level()` and `torch.func.jvp` in Python. A
    compiled program enters its level in C++ (`torch._functorch.predispatch._enter_dual_level`)
    and leaves that global at -1. What such a program does show: torch.func transforms push
    a functorch interpreter, and tracing (fake, functional, proxy tensors) puts the Python key
    in the keyset. The one case neither shows, a raw `dual_level()` run by the eager backend,
    is caught by `refused_a_tangent` (or probed, see `must_probe_without_level`).
    """
    level = _fwad._current_level
    if level >= 0:
        return level
    if keyset.has(_PYTHON_KEY) or _peek_interpreter_stack() is not None:
        return HIDDEN_LEVEL
    return -1


def refused_a_tangent(error: NotImplementedError) -> bool:
    """Whether the upstream kernel refused because an argument carries a tangent: its
    generated code checks every input's forward grad in C++, a free "any tangent" test."""
    return str(error).startswith("Trying to use forward AD with")


def must_probe_without_level(op) -> bool:
    """Ops whose upstream kernel may not be retried after refusing a tangent, or never refuses.

    Custom operators drop a tangent silently; an entry correcting upstream gets upstream's
    (wrong) formula; a mutating or random op must not run twice. These look for tangents at
    level 0 on every call outside a known level (one `_unpack_dual` per tensor argument).
    """
    return (
        op.namespace != "aten"
        or op._schema.is_mutable
        or torch.Tag.nondeterministic_seeded in op.tags
        or has_upstream_forward_ad(op)
    )


def named_upstream(op, upstream: Callable) -> Callable:
    """`upstream`, with a clear error when the kernel it captured was removed since."""
    def call_upstream(keyset, *args, **kwargs):
        try:
            return upstream(keyset, *args, **kwargs)
        except RuntimeError as error:
            raise_if_upstream_vanished(op, error)
            raise_if_nested_under_torch_func(op, error)
            raise

    return call_upstream


def translate_fast_path_error(name: str, message: str) -> None:
    """The C++ kernel's upstream call raised (engine/_fast_path.cpp): raise what
    `named_upstream` raises for the same error on the Python path, or return."""
    op, error = resolve_overload(name), RuntimeError(message)
    raise_if_upstream_vanished(op, error)
    raise_if_nested_under_torch_func(op, error)


fast_path.set_error_translator(translate_fast_path_error)


def raise_if_nested_under_torch_func(op, error: RuntimeError) -> None:
    """torch.func cannot wrap a nested tensor (plain PyTorch fails the same way): say what works."""
    if str(error).startswith("Internal error: NestedTensorImpl doesn't support") and _peek_interpreter_stack() is not None:
        raise RuntimeError(
            f"torch_fwdad: {op} made or received a nested tensor under a torch.func transform, which "
            f"cannot wrap one (PyTorch: {error}; plain PyTorch fails here too, tangents or not). "
            f"nn.TransformerEncoder takes this path in eval mode with src_key_padding_mask: use "
            f"torch.autograd.forward_ad (dual_level, make_dual), under which torch_fwdad differentiates it"
        ) from None


def raise_if_upstream_vanished(op, error: RuntimeError) -> None:
    """A library that overrode `op` beneath torch_fwdad was destroyed after we captured its kernel."""
    if "SafeKernelFunction has been invalidated" in str(error):
        raise RuntimeError(
            f"torch_fwdad: the Autograd kernel beneath torch_fwdad's forward rule for {op} was removed "
            f"after torch_fwdad installed its rule (a library that overrode {op} was destroyed). "
            f"Call torch_fwdad.disable() and torch_fwdad.enable() to install the rule over the kernel "
            f"in place now."
        ) from None


def unpack_tangents(sig: OpSignature, bound: list, level: int):
    """(arguments in schema order with duals replaced by primals, tangents aligned), or None
    when no argument carries a tangent at `level`. `bound` is updated in place."""
    tangents = [None] * len(bound)
    has_tangent = False
    seen = {}  # one primal per tensor passed twice: kernels test arguments for identity
    for i in sig.tensor_args:
        arg = bound[i]
        if can_carry_tangent(arg):
            primal, tangent = seen.get(id(arg)) or seen.setdefault(id(arg), _unpack_dual(arg, level))
            if tangent is not None:
                bound[i], tangents[i], has_tangent = primal, tangent, True
            elif forward_over_reverse.recovering():
                tangent = forward_over_reverse.recover_saved_output_tangent(arg)
                if tangent is not None:
                    tangents[i], has_tangent = tangent, True
        elif arg is not None and arg.is_nested:
            tangent = nested_tangent(arg, level)
            if tangent is not None:
                tangents[i], has_tangent = tangent, True
    for i in sig.tensor_list_args:
        unpacked = [_unpack_or_none(a, level) for a in bound[i] or ()]
        if any(t is not None for _, t in unpacked):
            bound[i] = [p for p, _ in unpacked]
            tangents[i] = [t for _, t in unpacked]
            has_tangent = True
    return (bound, tangents) if has_tangent else None


def tangent_test(sig: OpSignature) -> Callable[[tuple, dict, int], bool]:
    """`any_tangent(args, kwargs, level)`: whether an argument of a call carries a tangent.

    The "no tangent" answer, the common one inside a level, costs one `_unpack_dual` per
    floating tensor passed: Python has no cheaper query for a forward grad (the dispatch key
    set does not show one, and `_unpack_dual` also builds a view of the primal, ~2 us). The
    arguments are read as the dispatcher passes them (positional first, trailing defaults
    left out), and bound only when a keyword-only argument was given.
    """
    positions = sig.tensor_args  # ascending
    list_positions = sig.tensor_list_args

    def any_tangent(args: tuple, kwargs: dict, level: int) -> bool:
        values = sig.bind(args, kwargs) if kwargs else args
        count = len(values)
        for i in positions:
            if i >= count:
                break
            if carries_tangent(values[i], level):
                return True
        if list_positions:
            return any(carries_tangent(a, level) for i in list_positions if i < count for a in values[i])
        return False

    return any_tangent


def carries_tangent(arg, level: int) -> bool:
    # PyTorch gives tangents to floating and complex tensors only (make_dual asserts it).
    if arg is None or not (arg.is_floating_point() or arg.is_complex()):
        return False
    if arg.is_nested:  # its tangent, if a rule gave one, is kept beside it (engine/nested.py)
        return nested_tangent(arg, level) is not None
    try:
        return _unpack_dual(arg, level)[1] is not None
    except Exception:  # sparse and nested tensors cannot be unpacked (see SPARSE_LAYOUTS)
        if can_carry_tangent(arg):
            raise
        return False


def _guard_plain_forward_over_reverse(op, output) -> None:
    """Refuse what would be silently wrong: forward mode over this op's backward under
    torch.autograd.forward_ad (autograd.grad(create_graph=True) inside a dual level).

    The upstream node saved the primals and its own output before the tangent was
    attached, so a differentiated backward would see them as constants. torch.func
    transforms wrap tensors per level and are unaffected; they get no hook.
    """
    first = output[0] if isinstance(output, (tuple, list)) else output
    node = getattr(first, "grad_fn", None)
    if node is None or torch._C._functorch.peek_interpreter_stack() is not None:
        return

    def refuse(grad_outputs):
        if _fwad._current_level >= 0 and torch.is_grad_enabled():
            raise RuntimeError(
                f"torch_fwdad: forward-mode AD over the backward of {op} inside "
                f"torch.autograd.forward_ad.dual_level() (autograd.grad(..., create_graph=True) "
                f"on dual tensors) is not supported: PyTorch's backward node saved tensors "
                f"without their tangents, so the result would be wrong. Use "
                f"torch.func.jvp(torch.func.grad(f), ...) or torch.func.hessian(f), which work."
            )

    node.register_prehook(refuse)


def _unpack_or_none(arg, level):
    if not can_carry_tangent(arg):
        return arg, None
    return _unpack_dual(arg, level)


def attach_tangents(who: str, sig: OpSignature, output, out_tangents, level: int):
    """Validate the rule's tangents against the outputs and make the outputs dual.
    `who` names the rule in errors ("the forward rule of aten::... (origin)")."""
    if sig.num_outputs == 1:
        return _attach_one(who, sig.output_names[0], output, out_tangents, level)
    if not isinstance(out_tangents, (tuple, list)) or len(out_tangents) != sig.num_outputs:
        got = f"{len(out_tangents)} values" if isinstance(out_tangents, (tuple, list)) else type(out_tangents).__name__
        raise RuntimeError(
            f"torch_fwdad: {who} must return a tuple of "
            f"{sig.num_outputs} tangents aligned with the outputs {sig.output_names} "
            f"(None for an output without tangent), got {got}"
        )
    return tuple(
        _attach_one(who, name, out, tangent, level)
        for name, out, tangent in zip(sig.output_names, output, out_tangents)
    )


def _attach_one(who, name, out, tangent, level):
    if tangent is None:
        return out
    if isinstance(out, list):  # a Tensor[] output (_foreach_*): one tangent (or None) per tensor
        return _attach_list(who, name, out, tangent, level)
    if isinstance(out, torch.Tensor) and out.is_nested:
        keep_nested_tangent(who, name, out, tangent, level)
        return out
    check_tangent(who, name, out, tangent)
    return _make_dual(out, tangent, level)


def _attach_list(who, name, outs, tangents, level):
    if not isinstance(tangents, (list, tuple)) or len(tangents) != len(outs):
        raise RuntimeError(
            f"torch_fwdad: {who} must return a list of "
            f"{len(outs)} tangents for the Tensor[] output '{name}' (None where a tensor has none)"
        )
    return [_attach_one(who, f"{name}[{i}]", out, tangent, level)
            for i, (out, tangent) in enumerate(zip(outs, tangents))]
