"""Loading torch_fwdad's optional C++ extensions (setup.py builds each one when it can).

An extension is used only when it was built, loads, was built against the running torch
release (torch's C++ ABI changes between releases) and its environment switch does not
say "python"; otherwise the pure-Python code beside it runs, with the reason kept for
its module's `info()`.
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
