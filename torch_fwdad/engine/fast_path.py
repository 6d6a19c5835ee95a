"""The optional C++ no-tangent test (engine/_fast_path.cpp), and which path is active.

`pip install -e .` builds `_fast_path` when a C++ compiler is there (setup.py); without one,
or under a torch other than the release it was built against (torch's C++ ABI changes
between releases), or with TORCH_FWDAD_ENGINE=python in the environment, the pure-Python
kernels of engine/kernel.py decide every call, silently. `torch_fwdad.engine_info()` says
which path runs and why; `use_python_path()` switches at run time (tests run both).

Per overridden call outside a dual level, or inside one with no argument carrying a tangent,
the C++ kernel calls PyTorch's Autograd kernel without entering Python. With a tangent it
calls the Python kernel beneath it (engine/kernel.py), which does everything else.
"""

from __future__ import annotations

import torch

from .extension import OptionalExtension

ENVIRONMENT_VARIABLE = "TORCH_FWDAD_ENGINE"  # "python": never load the C++ kernel

# the kernel, and the switch registry.use_python_path turns
extension = OptionalExtension(__package__, "_fast_path", ENVIRONMENT_VARIABLE, "C++ kernel")


def capture(op: torch._ops.OpOverload):
    """The Autograd kernel of `op` now, held in C++, or None on the Python path."""
    if not extension.active:
        return None
    name = op._schema.name
    return extension.module.capture(name, op._schema.overload_name)


def install(op: torch._ops.OpOverload, upstream):
    """Install the C++ kernel above the Python one just installed; returns its handle
    (`.destroy()` takes it off), calling `upstream` (from `capture`) when no tangent."""
    namespace, name = op._schema.name.split("::", 1)
    return extension.module.install(namespace, name, op._schema.overload_name, upstream)


def enter_recovery() -> None:
    """A backward whose saved outputs get tangents back (forward_over_reverse.py) starts:
    every call goes to Python until it ends."""
    if extension.module is not None:
        extension.module.enter_recovery()


def exit_recovery() -> None:
    if extension.module is not None:
        extension.module.exit_recovery()


def set_error_translator(translate) -> None:
    if extension.module is not None:
        extension.module.set_error_translator(translate)
