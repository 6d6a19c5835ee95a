"""Loading torch_fwdad's optional C++ extensions (setup.py builds each one when it can).

An extension is used only when it was built, loads, was built against the running torch
release (torch's C++ ABI changes between releases) and its environment switch does not
say "python"; otherwise the pure-Python code beside it runs, with the reason kept for
its module's `info()`. `OptionalExtension` holds one such extension and the run-time switch
to its Python fallback (tests and benchmarks run both).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re

import torch


def load_extension(package: str, name: str, environment_variable: str, what: str):
    """(the extension module or None, why)."""
    if os.environ.get(environment_variable, "").strip().lower() == "python":
        return None, f"{environment_variable}=python"
    if importlib.util.find_spec(f"{package}.{name}") is None:
        return None, f"{what} not built (no compiler at install, or the package is used from its source tree)"
    try:
        module = importlib.import_module(f"{package}.{name}")
    except ImportError as error:  # e.g. built against another torch whose symbols differ
        return None, f"{what} not loadable: {error}"
    runtime = tuple(int(part) for part in re.match(r"(\d+)\.(\d+)\.(\d+)", torch.__version__).groups())
    built = tuple(module.TORCH_VERSION)
    if runtime != built:
        return None, f"{what} built against torch {'.'.join(map(str, built))}, running {torch.__version__}"
    return module, f"{what} loaded"


class OptionalExtension:
    """One optional extension: `module` (None where it did not load), `reason` (why), and
    `active`, the switch between it and the Python code beside it."""

    def __init__(self, package: str, name: str, environment_variable: str, what: str):
        self.package, self.name, self.environment_variable, self.what = package, name, environment_variable, what
        self.module, self.reason = self.load()
        self.active = self.module is not None

    def load(self):
        """(the extension module or None, why), looked up afresh."""
        return load_extension(self.package, self.name, self.environment_variable, self.what)

    def info(self) -> dict[str, object]:
        """{"path": "c++" or "python", "built": whether the extension loaded, "reason": why}."""
        reason = self.reason if self.module is None or self.active else "the Python path was chosen at run time"
        return {"path": "c++" if self.active else "python", "built": self.module is not None, "reason": reason}

    def use_python(self, python: bool = True) -> None:
        """Run the Python path (True) or the extension (False; raises when it did not load)."""
        if not python and self.module is None:
            raise RuntimeError(f"torch_fwdad: the {self.what} is not available: {self.reason}")
        self.active = not python
