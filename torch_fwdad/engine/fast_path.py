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

from .extension import load_extension

ENVIRONMENT_VARIABLE = "TORCH_FWDAD_ENGINE"  # "python": never load the C++ kernel


def _load():
    """(the extension module or None, why)."""
    return load_extension(__package__, "_fast_path", ENVIRONMENT_VARIABLE, "C++ kernel")


_extension, _load_reason = _load()
_use_cpp = _extension is not None


def active() -> bool:
    """Whether kernels installed from now on use the C++ no-tangent test."""
    return _use_cpp


def info() -> dict[str, object]:
    """{"path": "c++" or "python", "built": whether the extension loaded, "reason": why}."""
    reason = _load_reason if _extension is None or _use_cpp else "use_python_path() was called"
    return {"path": "c++" if _use_cpp else "python", "built": _extension is not None, "reason": reason}


def set_python_path(python: bool) -> None:
    """Choose the path for kernels installed from now on (registry.use_python_path reinstalls)."""
    global _use_cpp
    if not python and _extension is None:
        raise RuntimeError(f"torch_fwdad: the C++ kernel is not available: {_load_reason}")
    _use_cpp = not python


def capture(op: torch._ops.OpOverload):
    """The Autograd kernel of `op` now, held in C++, or None on the Python path."""
    if not _use_cpp:
        return None
    name = op._schema.name
    return _extension.capture(name, op._schema.overload_name)


def install(op: torch._ops.OpOverload, upstream):
    """Install the C++ kernel above the Python one just installed; returns its handle
    (`.destroy()` takes it off), calling `upstream` (from `capture`) when no tangent."""
    namespace, name = op._schema.name.split("::", 1)
    return _extension.install(namespace, name, op._schema.overload_name, upstream)


def enter_recovery() -> None:
    """A backward whose saved outputs get tangents back (forward_over_reverse.py) starts:
    every call goes to Python until it ends."""
    if _extension is not None:
        _extension.enter_recovery()


def exit_recovery() -> None:
    if _extension is not None:
        _extension.exit_recovery()


def set_error_translator(translate) -> None:
    if _extension is not None:
        _extension.set_error_translator(translate)
