"""The few facts codegen needs from outside derivatives.yaml, read without importing torch_fwdad.

torch_fwdad's package __init__ imports the generated code, which may be stale or broken
while codegen runs to fix it; so codegen reads the helpers' names from the source of
torch_fwdad/formulas and torch's forward formulas from torch's packaged table.
tests/test_codegen_facts.py imports the runtime and checks both agree with it.
"""

from __future__ import annotations

import ast
import functools
import os
import re

import torch
import torchgen
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMULAS = os.path.join(ROOT, "torch_fwdad", "formulas")
_NUMBERED_RESULT = re.compile(r"result\d*$")


def formula_helpers(package_dir: str = FORMULAS) -> frozenset[str]:
    """The names torch_fwdad.formulas exports: the union of its modules' literal __all__."""
    names: set[str] = set()
    for file_name in sorted(os.listdir(package_dir)):
        if not file_name.endswith(".py") or file_name == "__init__.py":
            continue
        path = os.path.join(package_dir, file_name)
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and "__all__" in _targets(node):
                names |= set(ast.literal_eval(node.value))
    return frozenset(names)


def _targets(node) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def installed_schema(name: str) -> str | None:
    """"aten::scatter_reduce.two" -> its schema in the installed torch, without "aten::"."""
    qualified, _, overload = name.partition(".")
    try:
        return str(torch._C._get_schema(qualified, overload)).split("::", 1)[1]
    except RuntimeError:
        return None


@functools.lru_cache(maxsize=1)
def upstream_forward_table() -> dict[str, bool]:
    """Overload name ("cholesky", "scatter_reduce.two") -> whether torch's own derivatives
    table gives it a forward formula: a key naming an output (result, result0.., or an
    output's name) rather than an input."""
    path = os.path.join(os.path.dirname(torchgen.__file__), "packaged", "autograd", "derivatives.yaml")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as file:
        table = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    forward = {}
    for entry in table:
        schema = torch._C.parse_schema("aten::" + entry["name"])
        inputs = {a.name for a in schema.arguments}
        outputs = {r.name for r in schema.returns if r.name} - inputs
        keyed = [entry, *entry.get("dispatch", {}).values()]  # dispatch: {Default: {...}, ...}
        keys = [name.strip() for formulas in keyed for key in formulas if key not in ("name", "dispatch") for name in key.split(",")]
        forward[entry["name"].split("(", 1)[0]] = any(k in outputs or _NUMBERED_RESULT.match(k) for k in keys)
    return forward


def has_upstream_forward(name: str) -> bool:
    """Whether the installed torch has its own forward formula for overload `name` ("aten::...")."""
    return upstream_forward_table().get(name.split("::", 1)[1], False)


def torch_version() -> str:
    """The installed torch's release, without the local build tag ("2.13.0", not "2.13.0+cpu")."""
    return torch.__version__.split("+", 1)[0]
