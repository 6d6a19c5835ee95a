"""Imports run one way between torch_fwdad's packages, as each package's docstring declares.

Every `import` anywhere in a module counts (function bodies too: a deferred import is
still a dependency), and so does `importlib.import_module("torch_fwdad....")`. Packages
are found on disk, so a package added or renamed is covered without editing this file.
A package's `__init__` docstring names what it may import on its `Imports:` line; one
without that line may import no other torch_fwdad package.
"""

import ast
import functools
import importlib.util
import os
import re

import pytest

# found, not imported: this test reads the source only
PACKAGE_DIR = importlib.util.find_spec("torch_fwdad").submodule_search_locations[0]
ROOT = "torch_fwdad"
_IMPORTS_LINE = re.compile(r"^Imports: (.+?)\.?$", re.MULTILINE)
_EVERYTHING_BUT = "any subpackage except "


def subpackages() -> list[str]:
    return sorted(name for name in os.listdir(PACKAGE_DIR)
                  if os.path.isfile(os.path.join(PACKAGE_DIR, name, "__init__.py")))


def node_of(module: str) -> str | None:
    """The package-level node of a torch_fwdad module: "engine", "torch_fwdad" (the package
    itself), "__main__" (a top-level module), or None outside torch_fwdad."""
    parts = module.split(".")
    if parts[0] != ROOT:
        return None
    if len(parts) == 1:
        return ROOT
    return parts[1]


def _modules():
    """(module name, is a package __init__, path) of every .py file of torch_fwdad."""
    for directory, _, files in os.walk(PACKAGE_DIR):
        for file in sorted(files):
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                relative = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
                is_init = file == "__init__.py"
                yield relative.removesuffix(".__init__") if is_init else relative, is_init, path


def imported_modules(module: str, is_init: bool, tree: ast.AST) -> set[str]:
    package = module if is_init else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import engine`
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


@functools.lru_cache(maxsize=1)
def package_graph() -> dict[str, dict[str, str]]:
    """node -> {node it imports: a file where it does}."""
    graph: dict[str, dict[str, str]] = {}
    for module, is_init, path in _modules():
        source = node_of(module)
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
        for imported in imported_modules(module, is_init, tree):
            target = node_of(imported)
            if target is not None and target != source and (target == ROOT or target in _known_nodes()):
                graph.setdefault(source, {}).setdefault(target, os.path.relpath(path, os.path.dirname(PACKAGE_DIR)))
    return graph


def _known_nodes() -> set[str]:
    top_level_modules = {f[:-3] for f in os.listdir(PACKAGE_DIR) if f.endswith(".py") and f != "__init__.py"}
    return set(subpackages()) | top_level_modules


def declared_imports(package: str) -> set[str] | None:
    """The packages `package`'s docstring says it may import, or None when it has no `Imports:` line."""
    path = os.path.join(PACKAGE_DIR, "__init__.py") if package == ROOT else os.path.join(PACKAGE_DIR, package, "__init__.py")
    with open(path, encoding="utf-8") as file:
        docstring = ast.get_docstring(ast.parse(file.read())) or ""
    line = _IMPORTS_LINE.search(docstring)
    if line is None:
        return None
    declared = line.group(1).strip()
    if declared == "nothing":
        return set()
    if declared.startswith(_EVERYTHING_BUT):
        return set(subpackages()) - _names(declared.removeprefix(_EVERYTHING_BUT))
    return _names(declared)


def _names(listing: str) -> set[str]:
    return {name.strip() for name in listing.split(",") if name.strip()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(node, path):
        state[node] = "open"
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return path[path.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor, path + [successor])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_package_graph_is_acyclic():
    graph = package_graph()
    cycle = find_cycle({node: set(targets) for node, targets in graph.items()})
    assert cycle is None, "import cycle between torch_fwdad's packages: " + " -> ".join(
        f"{a} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:]))


@pytest.mark.parametrize("package", [ROOT, *subpackages()])
def test_each_package_imports_only_what_its_docstring_declares(package):
    declared = declared_imports(package)
    actual = package_graph().get(package, {})
    undeclared = {target: where for target, where in actual.items() if target not in (declared or set())}
    where = "its __init__ docstring's `Imports:` line" if declared is not None else \
        "an `Imports:` line in its __init__ docstring (it has none, so it may import no torch_fwdad package)"
    assert undeclared == {}, f"torch_fwdad package {package} imports {undeclared}: fix the import, or add the package to {where}"


def module_graph(package: str) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports (a package's own __init__ excluded:
    `from .schema import x` inside engine/ also runs engine/__init__, which is not a cycle of modules)."""
    prefix = f"{ROOT}.{package}."
    modules = {module: (is_init, path) for module, is_init, path in _modules() if module.startswith(prefix)}
    graph = {}
    for module, (is_init, path) in modules.items():
        with open(path, encoding="utf-8") as file:
            imported = imported_modules(module, is_init, ast.parse(file.read(), path))
        graph[module] = {name for name in imported if name in modules and name != module}
    return graph


@pytest.mark.parametrize("package", subpackages())
def test_no_import_cycle_between_the_modules_of_a_package(package):
    cycle = find_cycle(module_graph(package))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_declared_direction_is_itself_acyclic():
    declared = {package: declared_imports(package) or set() for package in [ROOT, *subpackages()]}
    assert find_cycle(declared) is None


def test_entry_points_are_imported_by_nothing():
    entry_points = _known_nodes() - set(subpackages())  # __main__
    importers = {source: target for source, targets in package_graph().items() for target in targets if target in entry_points}
    assert entry_points and importers == {}


def test_the_checker_sees_a_deferred_import_cycle():
    # engine importing custom inside a function, as registry.py once did
    tree = ast.parse("def f():\n    from ..custom.transpose import transpose_refusal\n")
    assert "torch_fwdad.custom.transpose" in imported_modules("torch_fwdad.engine.registry", False, tree)
    assert find_cycle({"engine": {"custom"}, "custom": {"engine"}}) == ["custom", "engine", "custom"]
    assert find_cycle({"custom": {"engine"}, "engine": set()}) is None
