"""The sparse AD package's stages import one way (its __init__ docstring states the rule)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).parents[2] / "torch_fwdad" / "sparse_ad"
#: each unit and the sparse_ad units it must never import
FORBIDDEN = {
    "inputs": {"detection", "coloring", "evaluation", "plans", "api"},
    "products": {"detection", "coloring", "evaluation", "plans", "api"},
    "patterns": {"detection", "coloring", "evaluation", "plans", "api"},
    "detection": {"coloring", "evaluation", "plans", "api"},
    "coloring": {"detection", "evaluation", "plans", "api"},
    "evaluation": {"detection", "plans", "api"},
    "plans": {"api"},
}


def sparse_ad_imports(path):
    """The first component under torch_fwdad.sparse_ad of every module `path` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.startswith("torch_fwdad.sparse_ad."):
                found.add(name.split(".")[2])
    return found


@pytest.mark.parametrize("unit", sorted(FORBIDDEN))
def test_no_stage_imports_a_later_one(unit):
    files = sorted((PACKAGE / unit).rglob("*.py")) if (PACKAGE / unit).is_dir() else [PACKAGE / f"{unit}.py"]
    assert files and all(f.exists() for f in files)
    for path in files:
        assert not sparse_ad_imports(path) & FORBIDDEN[unit], f"{path.relative_to(PACKAGE)} imports a later stage"
