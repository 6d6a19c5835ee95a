"""What the installed torch already provides: overloads and their forward formulas."""

from __future__ import annotations

import functools
import os
import re

import torch

from .schema import qualified_name

_ENTRY = re.compile(r"^- name:\s*([\w.]+)\(")
_FORWARD_KEY = re.compile(r"^\s+result\d*\s*:")


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

    A line scan rather than a YAML parse: it keeps `import torch_fwdad` in milliseconds.
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
                table[current] = False
            elif current is not None and _FORWARD_KEY.match(line):
                table[current] = True
    return table


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
