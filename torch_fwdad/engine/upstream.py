"""What the installed torch already provides: overloads and their forward formulas."""

from __future__ import annotations

import functools
import os
import re

import torch

from .schema import qualified_name

_ENTRY = re.compile(r"^- name:\s*([\w.]+)\((.*)\)\s*->\s*(.*)$")
_KEY = re.compile(r"^\s+([\w, ]+):")
_ARGUMENT_NAME = re.compile(r"(\w+)\s*(?:=[^,]*)?$")
_NUMBERED_RESULT = re.compile(r"result\d*$")


@functools.lru_cache(maxsize=1)
def upstream_table_path() -> str | None:
    """torch's own derivatives table, shipped in the wheel with torchgen."""
    try:
        import torchgen
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(torchgen.__file__), "packaged", "autograd", "derivatives.yaml")
    return path if os.path.exists(path) else None


@functools.lru_cache(maxsize=1)
def upstream_forward_table() -> dict[str, bool]:
    """Overload name ("cholesky", "scatter_reduce.two") -> whether torch has a forward formula.

    A forward formula is keyed by an output: result, result0.., or an output's name
    ("values:", "Q, R:"); backward formulas are keyed by inputs. A line scan rather than
    a YAML parse keeps `import torch_fwdad` in milliseconds.
    """
    path = upstream_table_path()
    if path is None:
        return {}
    table: dict[str, bool] = {}
    current = None
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            entry = _ENTRY.match(line)
            if entry:
                current = entry.group(1)
                outputs = _names(entry.group(3).strip("() ")) - _names(entry.group(2))
                table[current] = False
                continue
            key = _KEY.match(line) if current is not None else None
            if key and any(name in outputs or _NUMBERED_RESULT.match(name) for name in key.group(1).replace(" ", "").split(",")):
                table[current] = True
    return table


def _names(declarations: str) -> set[str]:
    """Names declared in "Tensor self, int dim=-1" or "Tensor values, Tensor indices"."""
    names = set()
    for declaration in declarations.split(","):
        parts = declaration.strip().split()
        if len(parts) >= 2:
            match = _ARGUMENT_NAME.search(declaration.strip())
            if match:
                names.add(match.group(1))
    return names


def overload_key(op: torch._ops.OpOverload) -> str:
    return qualified_name(op._schema).split("::", 1)[1]


def has_upstream_forward_ad(op: torch._ops.OpOverload) -> bool:
    """True when the installed torch has its own forward formula for `op`.

    Operators outside aten (custom ops) never have one: PyTorch derives none for them.
    """
    if op.namespace != "aten":
        return False
    return upstream_forward_table().get(overload_key(op), False)


def resolve_overload(qualified: str) -> torch._ops.OpOverload | None:
    """"aten::scatter_reduce.two" -> the OpOverload, or None when this torch lacks it."""
    namespace, _, rest = qualified.partition("::")
    name, _, overload = rest.partition(".")
    try:
        packet = getattr(getattr(torch.ops, namespace), name)
        return getattr(packet, overload or "default")
    except (AttributeError, RuntimeError):
        return None
