"""What the installed torch already provides: overloads and their forward formulas.

The one reader of torch's own derivatives table (torchgen/packaged/autograd/derivatives.yaml
in the wheel), for the engine and the coverage report alike:
- `upstream_entries()`: every entry as YAML data (formulas included), parsed on first use;
- `upstream_forward_table()`: which overloads have a forward formula, read by a line scan
  of the same file because `import torch_fwdad` needs it and a YAML parse would cost
  hundreds of milliseconds there. tests/test_engine.py checks the scan against
  `has_forward_formula` of every parsed entry.
"""

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
            if key and _is_forward_key(key.group(1), outputs):
                table[current] = True
    return table


@functools.lru_cache(maxsize=1)
def upstream_entries() -> dict[str, dict]:
    """Overload ("sort.stable") -> its entry of torch's table as YAML data: "name", formulas
    keyed by input or output names, "dispatch", "output_differentiability"."""
    path = upstream_table_path()
    if path is None:
        return {}
    import yaml  # not at import: only forward-over-reverse checks and the report need formulas

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as file:
        table = yaml.load(file, Loader=loader)
    return {entry["name"].split("(", 1)[0]: entry for entry in table}


def has_forward_formula(entry: dict) -> bool:
    """Whether a parsed entry has a forward formula: what the line scan decides per line."""
    declared = _ENTRY.match(f"- name: {entry['name']}")
    outputs = _names(declared.group(3).strip("() ")) - _names(declared.group(2))
    keys = [key for key in entry if key not in ("name", "dispatch", "output_differentiability")]
    keys += [key for per_backend in (entry.get("dispatch") or {}).values() for key in (per_backend or {})]
    return any(_is_forward_key(key, outputs) for key in keys)


def _is_forward_key(key: str, outputs: set[str]) -> bool:
    """A key ("result", "values", "Q, R") names outputs: its formula is a forward formula."""
    return any(name in outputs or _NUMBERED_RESULT.match(name) for name in key.replace(" ", "").split(","))


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
