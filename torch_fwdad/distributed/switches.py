"""Overrides that register_jvp cannot express, toggled by torch_fwdad.enable()/disable().

`KernelSwitch` owns one Autograd kernel in its own torch.library fragment (destroying it
restores the kernel underneath); `AttributeSwitch` sets one attribute of a PyTorch class
and restores the original. Both are added with `engine.registry.add_switch`.
"""

from __future__ import annotations

import types
from typing import Callable

import torch

from ..engine.kernel import make_override
from ..engine.registry import _quiet_override_warning, add_switch
from ..engine.schema import OpSignature

ORIGIN = "torch_fwdad.distributed"
_INSTALLED = types.SimpleNamespace(active=True)  # a KernelSwitch installs and removes its kernel itself


class KernelSwitch:
    """`make_kernel(captured)` on `op`'s Autograd key; `restore`: the upstream Python kernel to
    register again on uninstall (torch.library keeps one Python kernel per operator and key,
    which ours replaced; destroying ours leaves the upstream C++ entry without it)."""

    def __init__(self, op: torch._ops.OpOverload, make_kernel: Callable, restore: Callable | None = None):
        self.op, self.make_kernel, self.restore, self.library = op, make_kernel, restore, None
        self.restored = None  # the fragment holding `restore` after an uninstall

    def install(self) -> None:
        if self.library is not None:
            return
        if self.restored is not None:
            self.restored._destroy()
            self.restored = None
        captured = torch.library.get_kernel(self.op, "AutogradCPU")
        library = torch.library.Library(self.op.namespace, "IMPL")
        with _quiet_override_warning():
            library.impl(self.op, self.make_kernel(captured), "Autograd", with_keyset=True)
        self.library = library

    def uninstall(self) -> None:
        if self.library is not None:
            self.library._destroy()
            self.library = None
            if self.restore is not None:
                self.restored = torch.library.Library(self.op.namespace, "IMPL")
                with _quiet_override_warning():
                    self.restored.impl(self.op, self.restore, "Autograd", with_keyset=True)


class AttributeSwitch:
    """Sets `owner.name`; uninstall restores the class's own attribute, or removes ours
    where the class only inherited one (so lookups fall through to the base again)."""

    _INHERITED = object()

    def __init__(self, owner, name: str, replacement):
        self.owner, self.name, self.replacement = owner, name, replacement
        self.original = owner.__dict__.get(name, self._INHERITED)

    def install(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def uninstall(self) -> None:
        if self.original is self._INHERITED:
            if self.name in self.owner.__dict__:
                delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self.original)


def switch(override) -> None:
    add_switch(override.install, override.uninstall)


def released_gil_upstream(op, captured):
    """The kernels beneath Autograd, called through the dispatcher where no input requires grad.

    Not the captured Autograd kernel there: `SafeKernelFunction.call_boxed` keeps the GIL
    while the collective is enqueued (measured: another Python thread barely ran during a
    call), and gloo's worker thread, holding its queue's lock, can need the GIL to free a
    finished Work whose tensors Python had let go; each waited for the other, a hang that
    no collective timeout ends. A call through the dispatcher releases the GIL. Upstream's
    Autograd kernel for these ops is PyTorch's autograd fallback, which only acts on inputs
    that require grad (it marks an output it wrote as requiring grad): those calls keep it.
    """
    below_autograd = torch._C._after_autograd_keyset

    def upstream(keyset, *args, **kwargs):
        if torch.is_grad_enabled() and any(map(_requires_grad, args)):
            return captured.call_boxed(keyset, *args, **kwargs)
        return op.redispatch(keyset & below_autograd, *args, **kwargs)

    return upstream


def _requires_grad(arg) -> bool:
    if isinstance(arg, (list, tuple)):
        return any(map(_requires_grad, arg))
    return isinstance(arg, torch.Tensor) and arg.requires_grad


def rule_switch(op, rule, upstream=None, restore=None):
    """`rule` as op's Autograd kernel on top of `upstream` (default: released_gil_upstream)."""
    signature = OpSignature.from_schema(op._schema)

    def make_kernel(captured):
        below = upstream or released_gil_upstream(op, captured)
        return make_override(op, rule, below, signature, ORIGIN, switch=_INSTALLED)

    return KernelSwitch(op, make_kernel, restore=restore)
