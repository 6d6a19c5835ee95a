"""register_jvp / unregister_jvp / enable / disable: the one path every forward rule takes.

Rules from derivatives.yaml and rules users register go through `register_jvp`. Each
installed rule owns one `torch.library.Library` fragment, so removing one rule restores
exactly the kernel that was there before it (the dispatcher keeps the previous kernel).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import fast_path, rule_table
from .in_place import make_in_place_override
from .kernel import JvpRule, make_override
from .schema import OpSignature, qualified_name
from .transpose import derived_autograd_kernel, transpose_refusal
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
    probe_linearity: bool = True  # transpose only: check the rule is linear on its first backward
    library: torch.library.Library | None = field(default=None, repr=False)
    fast_library: object | None = field(default=None, repr=False)  # the C++ kernel above `library`
    transpose_library: torch.library.Library | None = field(default=None, repr=False)
    # False: the installed kernel passes every call through (disabled, or unregistered while
    # a library above holds it); read by the kernel on each call.
    active: bool = False
    kernel_debug: str = field(default="", repr=False)  # how the dispatcher names our kernel


@dataclass(frozen=True)
class RegisteredRule:
    """What registered_ops() reports for one active rule."""

    name: str  # "aten::_cdist_forward", "aten::scatter_reduce.two"
    origin: str
    corrects_upstream: str | None


_registrations: dict[torch._ops.OpOverload, Registration] = rule_table.registrations
# Unregistered rules whose kernel another library captured: kept alive (a destroyed
# Library would invalidate that library's kernel), passing every call through.
_kept_beneath_others: list[Registration] = []
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
                 when: Callable[[list], bool] | None = None, probe_linearity: bool = True,
                 _origin: str = "register_jvp"):
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

    With `transpose=True` the first backward checks linearity on random tangents and
    refuses a non-linear rule; `probe_linearity=False` skips that check.
    """
    if rule is None:
        return lambda fn: register_jvp(op, fn, override=override, corrects_upstream=corrects_upstream,
                                       transpose=transpose, when=when, probe_linearity=probe_linearity,
                                       _origin=_origin)
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
    registration = Registration(op, rule, _origin, corrects_upstream, transpose, when=when,
                                probe_linearity=probe_linearity)
    if _enabled:
        try:
            _install(registration)
        except BaseException:
            _uninstall(registration)  # a failed registration leaves nothing behind
            if previous is not None and _enabled:
                _install(previous)
            raise
    _registrations[op] = registration
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
    if registration.library is not None:
        _kept_beneath_others.append(registration)


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


def engine_info() -> dict[str, object]:
    """Which kernel decides overridden calls without a tangent: {"path": "c++" or "python",
    "built": whether the C++ kernel (engine/_fast_path.cpp) loaded, "reason": why this path}."""
    return fast_path.extension.info()


def use_python_path(python: bool = True) -> None:
    """Reinstall every rule with the pure-Python kernels (True) or with the C++ no-tangent
    test above them (False; raises when it is not built). TORCH_FWDAD_ENGINE=python in the
    environment does the first from import on."""
    fast_path.extension.use_python(python)
    if _enabled:
        for registration in _registrations.values():
            _uninstall(registration)
        for registration in _registrations.values():
            _install(registration)


def registered_ops() -> list[RegisteredRule]:
    """The rules active now, for this torch, sorted by operator name."""
    active = [r for r in _registrations.values() if r.active]
    return sorted(
        (RegisteredRule(qualified_name(r.op._schema), r.origin, r.corrects_upstream) for r in active),
        key=lambda rule: rule.name,
    )


def _check_transposable(op: torch._ops.OpOverload) -> None:
    reason = transpose_refusal(op)
    if reason is not None:
        raise RuntimeError(f"torch_fwdad: register_jvp(..., transpose=True) cannot derive reverse mode for {op}: {reason}")


def _install(registration: Registration) -> None:
    if registration.library is not None:  # kept installed while disabled (see _uninstall)
        registration.active = True
        return
    op = registration.op
    if registration.transpose:
        derived = _derived_backward(registration)
        registration.transpose_library = _register_autograd_kernel(op, derived)
        call_upstream = derived
    else:
        call_upstream = _upstream_kernel(op)
    # The C++ no-tangent test needs a kernel it can call without Python: not a custom_op's
    # (Python) autograd, not a backward derived here.
    captured = None if registration.transpose or _is_python_custom_op(op) else fast_path.capture(op)
    sig = OpSignature.from_schema(op._schema)
    if registration.in_place_of is not None:
        override = make_in_place_override(op, registration.in_place_of, call_upstream, sig,
                                          switch=registration, when=registration.when)
    else:
        override = make_override(op, registration.rule, call_upstream, sig, registration.origin,
                                 switch=registration, when=registration.when, screened=captured is not None)
    library = _register_autograd_kernel(op, override)
    registration.library = library
    if captured is not None:
        with _quiet_override_warning():
            registration.fast_library = fast_path.install(op, captured)
    registration.kernel_debug = _top_kernel_debug(op)
    registration.active = True


def _is_python_custom_op(op: torch._ops.OpOverload) -> bool:
    return torch._library.custom_ops._maybe_get_opdef(op) is not None


def _upstream_kernel(op: torch._ops.OpOverload):
    """The Autograd kernel our override sits on, as a callable `(keyset, *args, **kwargs)`.

    A custom_op's kernel is Python, and the dispatcher calls a captured Python kernel
    through the newest Python registration for the key whenever a dispatch mode or a
    tensor subclass is active (fake tensors under torch.compile): that is our override,
    which would recurse. For custom ops we call the kernel custom_op itself builds.
    """
    if _is_python_custom_op(op):
        return torch._library.autograd.make_autograd_impl(op, torch._library.custom_ops._maybe_get_opdef(op))
    # torch.library.get_kernel needs a concrete backend key, so we capture AutogradCPU's
    # kernel, yet install on the Autograd alias key (_register_autograd_kernel), which
    # covers every backend at once: installing on the per-backend key is reported to
    # break torch.compile (pytorch issue 139707).
    return torch.library.get_kernel(op, "AutogradCPU").call_boxed


def _derived_backward(registration: Registration):
    return derived_autograd_kernel(registration.op, registration.rule, probe_linearity=registration.probe_linearity)


def _register_autograd_kernel(op: torch._ops.OpOverload, kernel) -> torch.library.Library:
    """Install `kernel` on the Autograd alias key of `op` in a fragment of its own."""
    library = torch.library.Library(op.namespace, "IMPL")
    with _quiet_override_warning():
        if "allow_override" in inspect.signature(library.impl).parameters:
            library.impl(op, kernel, "Autograd", with_keyset=True, allow_override=True)
        else:
            # torch < 2.11 refuses a second Python kernel on a key (custom_op has one) in
            # Library.impl; the dispatcher itself stacks kernels, as it does for aten ops.
            library.m.impl(qualified_name(op._schema), "Autograd", kernel, True)
    return library


def _top_kernel_debug(op: torch._ops.OpOverload) -> str:
    # a concrete key again (see _upstream_kernel); the alias key's kernel shows up under it
    return repr(torch.library.get_kernel(op, "AutogradCPU"))


def _uninstall(registration: Registration) -> None:
    """Take our kernels off `op`, or, when a library installed above captured ours, keep
    them passing every call through: destroying them would break that library."""
    registration.active = False
    if registration.library is not None and _top_kernel_debug(registration.op) != registration.kernel_debug:
        return
    if registration.fast_library is not None:  # the C++ kernel above the Python one
        registration.fast_library.destroy()
        registration.fast_library = None
    # Forward override first, then the derived backward it calls.
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
        if reason == "installed":
            op = resolve_overload(entry.name)
            existing = _registrations.get(op)
            if existing is not None and existing.origin != entry.origin:
                status[entry.name] = f"kept the rule from {existing.origin}"
                continue
            # Installing twice (importlib.reload(torch_fwdad)) replaces our own entry.
            if entry.in_place_of:
                register_in_place(op, resolve_overload(entry.in_place_of), corrects_upstream=entry.corrects_upstream,
                                  when=entry.when, _origin=entry.origin)
            else:
                register_jvp(op, entry.rule, corrects_upstream=entry.corrects_upstream, when=entry.when,
                             override=existing is not None, _origin=entry.origin)
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
