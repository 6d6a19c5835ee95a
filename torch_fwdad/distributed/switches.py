"""Overrides that register_jvp cannot express, toggled by torch_fwdad.enable()/disable().

`KernelSwitch` owns one Autograd kernel in its own torch.library fragment (destroying it
restores the kernel underneath); `AttributeSwitch` sets one attribute of a PyTorch class
and restores the original. Both are added with `engine.registry.add_switch`.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..engine.registry import _quiet_override_warning, add_switch


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
