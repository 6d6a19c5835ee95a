"""Read derivatives.yaml into the model, rejecting what would not work with a clear error."""

from __future__ import annotations

import ast
import builtins
import importlib
import os
import sys
import types

import torch
import yaml

from .model import Argument, DerivativesError, Entry, Formula, Location

ENTRY_KEYS = {"name", "corrects_upstream", "when", "output_differentiability", "in_place_of", "same_as"}
# `op`: the entry's own overload, so that a formula shared through same_as can call its kernel.
ALWAYS_IN_SCOPE = frozenset({"torch", "op"}) | frozenset(dir(builtins))


def load(path: str, helpers: frozenset[str] | None = None) -> tuple[Entry, ...]:
    with open(path, encoding="utf-8") as file:
        return parse(file.read(), os.path.relpath(path), helpers)


def parse(text: str, path: str = "derivatives.yaml", helpers: frozenset[str] | None = None) -> tuple[Entry, ...]:
    helpers = formula_helpers() if helpers is None else helpers
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise DerivativesError(Location(path, mark.line + 1 if mark else 1), f"not valid YAML: {error}") from None
    if root is None:
        return ()
    if not isinstance(root, yaml.SequenceNode):
        raise DerivativesError(_at(path, root), "expected a list of entries (- name: ...)")
    entries: dict[str, Entry] = {}
    for node in root.value:
        entry = parse_entry(node, path, helpers, entries)
        if entry.name in entries:
            raise DerivativesError(entry.location, f"duplicate entry for {entry.name} (first at {entries[entry.name].location})")
        entries[entry.name] = entry
    return tuple(entries.values())


def parse_entry(node: yaml.Node, path: str, helpers: frozenset[str], earlier: dict[str, Entry]) -> Entry:
    if not isinstance(node, yaml.MappingNode):
        raise DerivativesError(_at(path, node), "each entry must be a mapping starting with 'name:'")
    fields = {key.value: (key, value) for key, value in node.value}
    location = _at(path, node)
    if "name" not in fields:
        raise DerivativesError(location, "entry without 'name:' (the overload's schema)")
    schema_text = _scalar(fields["name"][1], path, "name")
    schema = parse_schema(schema_text, _at(path, fields["name"][1]))
    arguments = tuple(Argument(a.name, str(a.type)) for a in schema.arguments)
    outputs = output_names(schema)
    formula_fields = {key: pair for key, pair in fields.items() if key not in ENTRY_KEYS}
    formulas = []
    same_as = fields.get("same_as")
    if same_as:
        shared = parse_same_as(same_as[1], formula_fields, schema, arguments, outputs, earlier, path, helpers)
        formulas = list(shared.formulas)
    for key, (key_node, value) in formula_fields.items():
        # "output, logsumexp: f(...)": one whole formula returning a tuple, for outputs
        # whose tangents share their costly part (PyTorch's derivatives.yaml allows it too).
        for name in key.split(","):
            if name.strip() not in outputs:
                raise DerivativesError(
                    _at(path, key_node),
                    f"output '{name.strip()}' does not exist; {schema.name}'s outputs are {', '.join(outputs)}",
                )
        if "," in key and not isinstance(value, yaml.ScalarNode):
            raise DerivativesError(_at(path, value), f"a formula for several outputs ({key}) must be one whole expression returning a tuple")
        formula = parse_formula(", ".join(n.strip() for n in key.split(",")), value, arguments, outputs, path, helpers)
        formulas.append(formula)
    given = [name for formula in formulas for name in formula.outputs]
    if len(given) != len(set(given)):
        raise DerivativesError(location, f"an output of {schema.name} has two formulas")
    in_place = fields.get("in_place_of")
    if in_place:
        in_place = parse_in_place_of(in_place[1], schema, formulas, path)
    elif not formulas:
        raise DerivativesError(location, f"entry for {schema_text} gives no formula; add '{outputs[0]}: <formula>'")
    corrects = fields.get("corrects_upstream")
    when = fields.get("when")
    differentiability = fields.get("output_differentiability")
    if differentiability:
        differentiability = parse_differentiability(differentiability[1], outputs, given, path)
    elif same_as:
        differentiability = shared.output_differentiability
    return Entry(
        schema=schema_text,
        name=qualified_name(schema),
        arguments=arguments,
        outputs=outputs,
        formulas=tuple(formulas),
        corrects_upstream=_scalar(corrects[1], path, "corrects_upstream") if corrects else None,
        location=location,
        when=parse_condition(when[1], arguments, path) if when else None,
        output_differentiability=differentiability or None,
        in_place_of=in_place or None,
        same_as=shared.name if same_as else None,
    )


def parse_same_as(node, formula_fields, schema, arguments, outputs, earlier, path, helpers) -> Entry:
    """`same_as: <overload>`: this entry's formulas are those of an earlier entry, checked
    again against this schema (same names, same types). Returns that entry."""
    location = _at(path, node)
    name = "aten::" + _scalar(node, path, "same_as")
    if formula_fields:
        raise DerivativesError(location, f"an entry with same_as takes its formulas from {name}; remove its own formulas "
                                         f"or drop same_as")
    shared = earlier.get(name)
    if shared is None:
        raise DerivativesError(location, f"same_as: no entry for {name} above this one; same_as names an earlier entry's overload")
    if shared.same_as or shared.in_place_of:
        raise DerivativesError(location, f"same_as: {name} has no formulas of its own; write same_as: "
                                         f"{(shared.same_as or shared.in_place_of).removeprefix('aten::')}")
    here = {a.name: a for a in arguments}
    for argument in shared.arguments:
        if argument.name not in _names_used(shared):
            continue
        mine = here.get(argument.name)
        if mine is None:
            raise DerivativesError(location, f"same_as: {name}'s formulas use '{argument.name}', which "
                                             f"{qualified_name(schema)} does not take; write its formulas out")
        if mine.type != argument.type:
            raise DerivativesError(location, f"same_as: '{argument.name}' is {argument.type} in {name} but {mine.type} "
                                             f"here; write its formulas out")
    for formula in shared.formulas:
        try:
            recheck_formula(formula, arguments, outputs, helpers)
        except DerivativesError as error:
            raise DerivativesError(location, f"same_as: {name}'s formula does not fit {qualified_name(schema)}: "
                                             f"{str(error).removeprefix(str(error.location) + ': ')}") from None
    return shared


def recheck_formula(formula: Formula, arguments, outputs, helpers) -> None:
    """The checks parse_formula made, against another overload's arguments and outputs."""
    for name in formula.outputs:
        if name not in outputs:
            raise DerivativesError(formula.location, f"output '{name}' does not exist; the outputs are {', '.join(outputs)}")
    if formula.whole is not None:
        check_expression(formula.whole, arguments, outputs, helpers, formula.location, f"'{formula.output}'")
    tensors = {a.name for a in arguments if a.carries_tangent}
    for name, expression in formula.per_input:
        if name not in tensors:
            raise DerivativesError(formula.location, f"'{name}' is not a Tensor input of this overload; inputs are {', '.join(sorted(tensors))}")
        check_expression(expression, arguments, outputs, helpers, formula.location, f"'{formula.output}' (term of {name})")


def _names_used(entry: Entry) -> set[str]:
    """The argument names the entry's formulas read (x for x_p, x_t and a plain x)."""
    names = set()
    for formula in entry.formulas:
        for expression in ([formula.whole] if formula.whole else [e for _, e in formula.per_input]):
            for name in _free_names(ast.parse(expression, mode="eval")):
                names |= {name, name.removesuffix("_p").removesuffix("_t")}
        names |= {name for name, _ in formula.per_input}
    return names


def parse_in_place_of(node, schema, formulas, path) -> str:
    """`in_place_of: <overload>`: an in-place overload computed as its out-of-place entry,
    then copied into self (copy_ has its own forward formula, so self's tangent follows)."""
    location = _at(path, node)
    functional = "aten::" + _scalar(node, path, "in_place_of")
    if formulas:
        raise DerivativesError(location, "an in_place_of entry takes its tangent from the out-of-place overload; remove its formulas")
    mutated = [a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    if mutated != ["self"] or len(schema.returns) != 1:
        raise DerivativesError(location, f"in_place_of needs an overload that writes into self and returns it; {qualified_name(schema)} does not")
    op = _engine_upstream.resolve_overload(functional)
    if op is None:
        raise DerivativesError(location, f"unknown overload {functional} in in_place_of")
    if [a.name for a in op._schema.arguments] != [a.name for a in schema.arguments]:
        raise DerivativesError(location, f"{functional} does not take the arguments of {qualified_name(schema)}")
    return functional


def parse_differentiability(node, outputs, given, path) -> tuple[bool, ...]:
    """`output_differentiability: [True, False]`, as in PyTorch's table: False declares a
    floating output that gets no tangent (a mask, drawn noise); the check matrix fails any
    other floating output left without one."""
    location = _at(path, node)
    values = [v.value for v in node.value] if isinstance(node, yaml.SequenceNode) else None
    if values is None or len(values) != len(outputs) or any(v not in ("True", "False") for v in values):
        raise DerivativesError(location, f"output_differentiability must list True or False for each of the outputs {', '.join(outputs)}")
    flags = tuple(v == "True" for v in values)
    contradicted = [name for name, flag in zip(outputs, flags) if not flag and name in given]
    if contradicted:
        raise DerivativesError(location, f"output_differentiability declares {', '.join(contradicted)} not differentiable, but the entry gives a formula for it")
    return flags


def parse_condition(node, arguments, path) -> str:
    """`when: <expression>` over the entry's non-Tensor arguments: where it is false, the
    override calls PyTorch's kernel unchanged, so upstream's own formula (or error) stays."""
    location = _at(path, node)
    expression = _scalar(node, path, "when")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise DerivativesError(location, f"condition 'when' is not valid Python: {error.msg}: {expression}") from None
    plain = {a.name for a in arguments if not a.carries_tangent}
    for name in sorted(_free_names(tree)):
        if name in plain or name in dir(builtins):
            continue
        if any(a.name == name for a in arguments):
            raise DerivativesError(
                location,
                f"condition 'when' may not use the Tensor argument '{name}': it is decided before "
                f"tangents are unpacked, from the non-Tensor arguments ({', '.join(sorted(plain)) or 'none'})",
            )
        raise DerivativesError(
            location,
            f"unknown name '{name}' in condition 'when'; it may use the non-Tensor arguments: "
            f"{', '.join(sorted(plain)) or 'none'}",
        )
    return expression


def parse_schema(text: str, location: Location) -> torch._C.FunctionSchema:
    try:
        schema = torch._C.parse_schema("aten::" + text)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0].removesuffix(" here:")
        raise DerivativesError(location, f"schema does not parse: {first_line}") from None
    name = qualified_name(schema)
    installed = _installed_schema(name)
    if installed is None:
        _refuse_or_note(location, f"unknown overload {name}: torch {torch.__version__} has no such operator")
    elif installed != text:
        _refuse_or_note(location, f"schema differs from torch {torch.__version__}'s; write: {installed}")
    return schema


# The torch the checked-in generated files are made with (CI's pin). Schemas are checked
# strictly against it; another torch may lack an overload or spell its schema differently,
# which the engine skips at import with the same reason (registry._skip_reason).
REFERENCE_TORCH = "2.13.0"
#: location -> why the entry does not apply to the installed torch (other torches only).
version_notes: dict[Location, str] = {}


def on_reference_torch() -> bool:
    return torch_version() == REFERENCE_TORCH


def _refuse_or_note(location: Location, problem: str) -> None:
    if on_reference_torch():
        raise DerivativesError(location, problem)
    version_notes[location] = problem


def parse_formula(output, node, arguments, outputs, path, helpers) -> Formula:
    location = _at(path, node)
    if isinstance(node, yaml.ScalarNode):
        expression = node.value
        check_expression(expression, arguments, outputs, helpers, location, f"'{output}'")
        return Formula(output, expression, (), location)
    if not isinstance(node, yaml.MappingNode):
        raise DerivativesError(location, f"formula for '{output}' must be an expression or a mapping input -> term")
    by_name = {a.name: a for a in arguments}
    terms = []
    for key_node, value in node.value:
        term_location = _at(path, value)
        argument = by_name.get(key_node.value)
        if argument is None or not argument.carries_tangent:
            tensors = ", ".join(a.name for a in arguments if a.carries_tangent)
            raise DerivativesError(_at(path, key_node), f"'{key_node.value}' is not a Tensor input of this overload; inputs are {tensors}")
        expression = _scalar(value, path, key_node.value)
        names = check_expression(expression, arguments, outputs, helpers, term_location, f"'{output}' (term of {argument.name})")
        foreign = sorted(n for n in names if n.endswith("_t") and n != f"{argument.name}_t" and n[:-2] in by_name)
        if foreign:
            raise DerivativesError(term_location, f"the term of {argument.name} may only use its own tangent {argument.name}_t, not {', '.join(foreign)}")
        terms.append((argument.name, expression))
    return Formula(output, None, tuple(terms), location)


def check_expression(expression, arguments, outputs, helpers, location, what) -> set[str]:
    """Syntax and names; returns the free names the expression uses."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise DerivativesError(location, f"formula for {what} is not valid Python: {error.msg}: {expression}") from None
    free = _free_names(tree)
    tensor_names = {a.name for a in arguments if a.carries_tangent}
    scope = set(outputs) | ALWAYS_IN_SCOPE | helpers
    for argument in arguments:
        scope |= {f"{argument.name}_p", f"{argument.name}_t"} if argument.carries_tangent else {argument.name}
    for name in sorted(free):
        if name in tensor_names:
            raise DerivativesError(location, f"'{name}' is a Tensor argument: write {name}_p for its primal or {name}_t for its tangent")
        if name not in scope:
            raise DerivativesError(
                location,
                f"unknown name '{name}' in formula for {what}; in scope: "
                f"{', '.join(sorted(scope - ALWAYS_IN_SCOPE - helpers))}, torch, and the helpers of torch_fwdad.formulas",
            )
    return free


def _free_names(tree: ast.AST) -> set[str]:
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound


def import_bare(module_name: str):
    """Import a torch_fwdad submodule without running torch_fwdad/__init__.

    The package __init__ imports the generated code, which may be stale or broken while
    codegen runs to fix it; a bare package module stands in for it here.
    """
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "torch_fwdad")
    saved = {k: v for k, v in sys.modules.items() if k == "torch_fwdad" or k.startswith("torch_fwdad.")}
    for k in saved:
        del sys.modules[k]
    stand_in = types.ModuleType("torch_fwdad")
    stand_in.__path__ = [root]
    sys.modules["torch_fwdad"] = stand_in
    try:
        return importlib.import_module(module_name)
    finally:
        for k in [k for k in sys.modules if k == "torch_fwdad" or k.startswith("torch_fwdad.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def formula_helpers() -> frozenset[str]:
    """Public names of torch_fwdad.formulas: the helpers a formula may call."""
    return frozenset(import_bare("torch_fwdad.formulas").__all__)


# One naming rule for outputs and one resolver, shared with the runtime.
_engine_schema = import_bare("torch_fwdad.engine.schema")
_engine_upstream = import_bare("torch_fwdad.engine.upstream")
output_names = _engine_schema.output_names
qualified_name = _engine_schema.qualified_name


def has_upstream_forward(name: str) -> bool:
    """Whether the installed torch has its own forward formula for overload `name`."""
    op = _engine_upstream.resolve_overload(name)
    return op is not None and _engine_upstream.has_upstream_forward_ad(op)


def torch_version() -> str:
    """The installed torch's release, without the local build tag ("2.13.0", not "2.13.0+cpu")."""
    return torch.__version__.split("+", 1)[0]


def _installed_schema(name: str) -> str | None:
    op = _engine_upstream.resolve_overload(name)
    return None if op is None else str(op._schema).split("::", 1)[1]


def _scalar(node, path, what) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise DerivativesError(_at(path, node), f"'{what}' must be a single line of text")
    return node.value


def _at(path: str, node: yaml.Node) -> Location:
    return Location(path, node.start_mark.line + 1)
