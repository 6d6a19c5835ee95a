"""register_jvp / unregister_jvp / enable / disable: the one path every forward rule takes.

Rules from derivatives.yaml and rules users register go through `register_jvp`. Each
installed rule owns one `torch.library.Library` fragment, so removing one rule restores
exactly the kernel that was there before it (the dispatcher keeps the previous kernel).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from .in_place import make_in_place_override
from .kernel import JvpRule, make_override
from .schema import OpSignature, qualified_name
from .upstream import has_upstream_forward_ad, resolve_overload

log = logging.getLogger("torch_fwdad")


@dataclass
class Registration:
    op: torch._ops.OpOverload
    rule: JvpRule
    origin: str  # "derivatives.yaml:12" or "register_jvp"
    corrects_upstream: str | None = None
    transpose: bool = False  # also install reverse mode derived from the rule
    when: Callable[[list], bool] | None = None  # on the bound arguments; False: upstream runs
    in_place_of: torch._ops.OpOverload | None = None  # rule None: computed by this overload
    library: torch.library.Library | None = field(default=None, repr=False)
    transpose_library: torch.library.Library | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RegisteredRule:
    """What registered_ops() reports for one active rule."""

    name: str  # "aten::_cdist_forward", "aten::scatter_reduce.two"
    origin: str
    corrects_upstream: str | None


_registrations: dict[torch._ops.OpOverload, Registration] = {}
_enabled = True
# Overrides outside register_jvp (torch_fwdad.distributed's kernels and patches): (install, uninstall).
_switches: list[tuple[Callable[[], None], Callable[[], None]]] = []


def add_switch(install: Callable[[], None], uninstall: Callable[[], None]) -> None:
    """Have enable()/disable() also run `install`/`uninstall`; installs now if enabled."""
    _switches.append((install, uninstall))
    if _enabled:
        install()


def as_overload(op) -> torch._ops.OpOverload:
    """Accept an OpOverload, an OpOverloadPacket (its default), a custom_op, or a name."""
    if isinstance(op, torch._ops.OpOverload):
        return op
    if isinstance(op, torch._ops.OpOverloadPacket):
        return op.default
    if hasattr(op, "_opoverload"):  # torch.library.custom_op's CustomOpDef
        return op._opoverload
    if isinstance(op, str):
        if "::" not in op:
            raise ValueError(f"torch_fwdad: expected a qualified operator name like 'mylib::op' or 'aten::op.overload', got {op!r}")
        resolved = resolve_overload(op)
        if resolved is None:
            raise ValueError(f"torch_fwdad: no operator {op!r} in this torch ({torch.__version__})")
        return resolved
    raise TypeError(f"torch_fwdad: expected an operator (OpOverload, custom_op or qualified name), got {type(op).__name__}")


def register_jvp(op, rule: JvpRule | None = None, *, override: bool = False,
                 corrects_upstream: str | None = None, transpose: bool = False,
                 when: Callable[[list], bool] | None = None, _origin: str = "register_jvp"):
    """Give `op` a forward-mode rule: `rule(primals, tangents, output) -> output tangent(s)`.

    `primals` holds every argument in schema order (defaults filled in); `tangents` is
    aligned with it, a Tensor where the argument carries a tangent and None elsewhere.
    The rule returns one tangent, or a tuple aligned with the outputs (None where an
    output has no tangent). Usable as a decorator: `@register_jvp("mylib::op")`.

    `transpose=True` (custom operators without `register_autograd` only) also gives the
    operator reverse mode, derived by transposing the rule, which must be linear in the tangents.

    `when(arguments) -> bool` (all arguments in schema order, as `primals` but before
    tangents are unpacked) limits the rule to some calls: where it is False the kernel that
    was there before runs with the arguments untouched, its own forward formula included.
    """
    if rule is None:
        return lambda fn: register_jvp(op, fn, override=override, corrects_upstream=corrects_upstream,
                                       transpose=transpose, when=when, _origin=_origin)
    op = as_overload(op)
    if not callable(rule):
        raise TypeError(f"torch_fwdad: the rule for {op} must be callable, got {type(rule).__name__}")
    previous = _registrations.get(op)
    if previous is not None and not override:
        raise RuntimeError(
            f"torch_fwdad: {op} already has a forward rule (from {previous.origin}); "
            f"pass override=True to replace it, or call unregister_jvp first"
        )
    if corrects_upstream is None and has_upstream_forward_ad(op):
        raise RuntimeError(
            f"torch_fwdad: {op} already has a forward-mode formula in PyTorch; torch_fwdad never "
            f"replaces one silently. If PyTorch's formula is wrong, pass corrects_upstream='<why>'"
        )
    if transpose:
        _check_transposable(op)
    if previous is not None:
        _uninstall(previous)
    registration = Registration(op, rule, _origin, corrects_upstream, transpose, when)
    _registrations[op] = registration
    if _enabled:
        _install(registration)
    return rule


def register_in_place(op, functional, *, corrects_upstream: str | None = None,
                      when: Callable[[list], bool] | None = None, _origin: str = "register_in_place") -> None:
    """Forward mode for in-place `op` as `self.copy_(functional(*args))` when a tangent is
    present (engine/in_place.py); `functional` is the out-of-place overload with a rule."""
    op, functional = as_overload(op), as_overload(functional)
    if corrects_upstream is None and has_upstream_forward_ad(op):
        raise RuntimeError(f"torch_fwdad: {op} already has a forward-mode formula in PyTorch; pass corrects_upstream='<why>'")
    previous = _registrations.pop(op, None)
    if previous is not None:
        _uninstall(previous)
    registration = Registration(op, None, _origin, corrects_upstream, when=when, in_place_of=functional)
    _registrations[op] = registration
    if _enabled:
        _install(registration)


def unregister_jvp(op) -> None:
    """Remove the rule torch_fwdad added for `op` and restore the kernel it replaced."""
    op = as_overload(op)
    registration = _registrations.pop(op, None)
    if registration is None:
        raise KeyError(f"torch_fwdad: {op} has no forward rule registered by torch_fwdad")
    _uninstall(registration)


def rule_of(op) -> JvpRule:
    """The rule registered for `op` (used by check_jvp)."""
    op = as_overload(op)
    if op not in _registrations:
        raise KeyError(f"torch_fwdad: {op} has no forward rule registered by torch_fwdad")
    return _registrations[op].rule


def enable() -> None:
    """Reinstall every registered rule (import does this already)."""
    global _enabled
    _enabled = True
    for registration in _registrations.values():
        _install(registration)
    for install, _ in _switches:
        install()


def disable() -> None:
    """Restore every captured kernel: forward mode raises PyTorch's own errors again."""
    global _enabled
    _enabled = False
    for registration in _registrations.values():
        _uninstall(registration)
    for _, uninstall in reversed(_switches):
        uninstall()


def is_enabled() -> bool:
    return _enabled


def registered_ops() -> list[RegisteredRule]:
    """The rules active now, for this torch, sorted by operator name."""
    active = [r for r in _registrations.values() if r.library is not None]
    return sorted(
        (RegisteredRule(qualified_name(r.op._schema), r.origin, r.corrects_upstream) for r in active),
        key=lambda rule: rule.name,
    )


def _check_transposable(op: torch._ops.OpOverload) -> None:
    from ..custom.transpose import transpose_refusal

    reason = transpose_refusal(op)
    if reason is not None:
        raise RuntimeError(f"torch_fwdad: register_jvp(..., transpose=True) cannot derive reverse mode for {op}: {reason}")


def _install(registration: Registration) -> None:
    if registration.library is not None:
        return
    op = registration.op
    if registration.transpose:
        registration.transpose_library = _install_transposed_backward(op, registration.rule)
    captured = torch.library.get_kernel(op, "AutogradCPU")
    if registration.in_place_of is not None:
        override = make_in_place_override(op, registration.in_place_of, captured, OpSignature.from_schema(op._schema),
                                          when=registration.when)
    else:
        override = make_override(op, registration.rule, captured, OpSignature.from_schema(op._schema), registration.origin,
                             when=registration.when)
    library = torch.library.Library(op.namespace, "IMPL")
    with _quiet_override_warning():
        library.impl(op, override, "Autograd", with_keyset=True)
    registration.library = library


def _install_transposed_backward(op, rule: JvpRule) -> torch.library.Library:
    """Put the rule-derived Autograd kernel under the forward override (own fragment)."""
    from ..custom.transpose import derived_autograd_kernel

    library = torch.library.Library(op.namespace, "IMPL")
    with _quiet_override_warning():
        library.impl(op, derived_autograd_kernel(op, rule), "Autograd", with_keyset=True)
    return library


def _uninstall(registration: Registration) -> None:
    # Forward override first, then the derived backward it captured.
    for attribute in ("library", "transpose_library"):
        library = getattr(registration, attribute)
        if library is not None:
            library._destroy()
            setattr(registration, attribute, None)


@contextlib.contextmanager
def _quiet_override_warning():
    """Hide PyTorch's "Overriding a previously registered kernel" for our registrations only.

    The C++ side warns once per process; with warn-always on it warns without using up
    that once, so a user's own later override still gets its warning.
    """
    warn_always = torch._C._get_warnAlways()
    torch._C._set_warnAlways(True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"(?s).*Overriding a previously registered kernel")
            yield
    finally:
        torch._C._set_warnAlways(warn_always)


@dataclass(frozen=True)
class BuiltinEntry:
    """One generated derivatives.yaml entry, as emitted by codegen."""

    name: str  # "aten::scatter_reduce.two"
    schema: str  # as written in derivatives.yaml
    rule: JvpRule
    origin: str  # "derivatives.yaml:LINE"
    corrects_upstream: str | None = None
    when: Callable[[list], bool] | None = None  # the entry's `when:` condition
    output_differentiability: tuple[bool, ...] | None = None  # read by the check matrix
    in_place_of: str | None = None  # "aten::index_reduce": see register_in_place


def install_builtin(entries: tuple[BuiltinEntry, ...]) -> dict[str, str]:
    """Register the entries this torch needs; returns name -> "installed" or why skipped."""
    status: dict[str, str] = {}
    for entry in entries:
        status[entry.name] = reason = _skip_reason(entry)
        if reason == "installed" and entry.in_place_of:
            register_in_place(resolve_overload(entry.name), resolve_overload(entry.in_place_of),
                              corrects_upstream=entry.corrects_upstream, when=entry.when, _origin=entry.origin)
        elif reason == "installed":
            register_jvp(resolve_overload(entry.name), entry.rule, corrects_upstream=entry.corrects_upstream,
                         when=entry.when, _origin=entry.origin)
        else:
            log.debug("torch_fwdad: skipping %s (%s): %s", entry.name, entry.origin, reason)
    return status


def _skip_reason(entry: BuiltinEntry) -> str:
    op = resolve_overload(entry.name)
    if op is None:
        return f"torch {torch.__version__} has no overload {entry.name}"
    installed_schema = str(op._schema).split("::", 1)[1]
    if installed_schema != entry.schema:
        return f"schema differs in torch {torch.__version__}: {installed_schema}"
    if entry.corrects_upstream is None and has_upstream_forward_ad(op):
        return f"torch {torch.__version__} has its own forward formula"
    return "installed"
