"""The one reader of derivatives.yaml: text -> model, rejecting what would not work with a
clear error that says what to write instead.

Two layers: `compose` reads the YAML structure only (entries, their keys and lines: what
tools/new_formula.py needs, even while a scaffolded entry still holds placeholders);
`parse` validates every entry into the model (codegen and the docs emitter).
"""

from __future__ import annotations

import ast
import builtins
import os
import re
from dataclasses import dataclass

import torch
import yaml

from .facts import formula_helpers, installed_schema, torch_version
from .model import (
    OUTER_DERIVATIVE, AutoLinear, DerivativesError, Entry, Expression, Formula, Location, NonDifferentiable,
    NotImplemented_, PerInput, Term, Whole, free_names,
)

ENTRY_KEYS = {"name", "corrects_upstream", "when", "output_differentiability", "in_place_of", "same_as"}
# `op`: the entry's own overload, so that a formula shared through same_as can call its kernel.
ALWAYS_IN_SCOPE = frozenset({"torch", "op"}) | frozenset(dir(builtins))
KEYWORDS = {"auto_linear": AutoLinear(), "non_differentiable": NonDifferentiable()}
SECTION = re.compile(r"^# -{10,} (.+)$")


# ---------------------------------------------------------------- layer 1: YAML structure

@dataclass(frozen=True)
class RawEntry:
    schema_text: str
    fields: dict  # key -> (key node, value node), in file order
    location: Location

    @property
    def overload(self) -> str:
        """"scatter_reduce.two": the text before the schema's "("."""
        return self.schema_text.split("(", 1)[0].strip()


def compose(text: str, path: str = "derivatives.yaml") -> tuple[RawEntry, ...]:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise DerivativesError(Location(path, mark.line + 1 if mark else 1), f"not valid YAML: {error}") from None
    if root is None:
        return ()
    if not isinstance(root, yaml.SequenceNode):
        raise DerivativesError(_at(path, root), "expected a list of entries (- name: ...)")
    entries = []
    for node in root.value:
        if not isinstance(node, yaml.MappingNode):
            raise DerivativesError(_at(path, node), "each entry must be a mapping starting with 'name:'")
        fields = {key.value: (key, value) for key, value in node.value}
        if "name" not in fields:
            raise DerivativesError(_at(path, node), "entry without 'name:' (the overload's schema)")
        entries.append(RawEntry(_scalar(fields["name"][1], path, "name"), fields, _at(path, node)))
    return tuple(entries)


def sections(text: str) -> list[tuple[int, str]]:
    """(line, title) of the '# ------ title' comment lines that group the entries."""
    return [(number, match.group(1).strip()) for number, line in enumerate(text.splitlines(), 1)
            if (match := SECTION.match(line))]


# ---------------------------------------------------------------- layer 2: the model

def load(path: str, helpers: frozenset[str] | None = None) -> tuple[Entry, ...]:
    with open(path, encoding="utf-8") as file:
        return parse(file.read(), os.path.relpath(path), helpers)


def parse(text: str, path: str = "derivatives.yaml", helpers: frozenset[str] | None = None) -> tuple[Entry, ...]:
    helpers = formula_helpers() if helpers is None else helpers
    entries: dict[str, Entry] = {}
    for raw in compose(text, path):
        entry = parse_entry(raw, path, helpers, entries)
        if entry.name in entries:
            raise DerivativesError(entry.location, f"duplicate entry for {entry.name} (first at {entries[entry.name].location})")
        entries[entry.name] = entry
    return tuple(entries.values())


def parse_entry(raw: RawEntry, path: str, helpers: frozenset[str], earlier: dict[str, Entry]) -> Entry:
    fields = raw.fields
    parse_schema(raw.schema_text, _at(path, fields["name"][1]))
    skeleton = Entry(schema_text=raw.schema_text, formulas=(), location=raw.location)
    name, outputs = skeleton.name, skeleton.outputs
    formula_fields = {key: pair for key, pair in fields.items() if key not in ENTRY_KEYS}
    formulas: list[Formula] = []
    same_as = fields.get("same_as")
    if same_as:
        shared = parse_same_as(same_as[1], formula_fields, skeleton, earlier, path, helpers)
        formulas = list(shared.formulas)
    for key, (key_node, value) in formula_fields.items():
        # "output, logsumexp: f(...)": one whole formula returning a tuple, for outputs
        # whose tangents share their costly part (PyTorch's derivatives.yaml allows it too).
        keyed = tuple(n.strip() for n in key.split(","))
        for output in keyed:
            if output not in outputs:
                raise DerivativesError(_at(path, key_node), f"output '{output}' does not exist; {name}'s outputs are {', '.join(outputs)}")
        if len(keyed) > 1 and not isinstance(value, yaml.ScalarNode):
            raise DerivativesError(_at(path, value), f"a formula for several outputs ({key}) must be one whole expression returning a tuple")
        formulas.append(parse_formula(keyed, value, skeleton, path))
    given = [output for formula in formulas for output in formula.outputs]
    if len(given) != len(set(given)):
        raise DerivativesError(raw.location, f"an output of {name} has two formulas")
    in_place = fields.get("in_place_of")
    if in_place:
        in_place = parse_in_place_of(in_place[1], skeleton, formulas, path)
    elif not formulas:
        raise DerivativesError(raw.location, f"entry for {raw.schema_text} gives no formula; add '{outputs[0]}: <formula>'")
    differentiability = fields.get("output_differentiability")
    if differentiability:
        differentiability = parse_differentiability(differentiability[1], outputs, given, path)
    elif same_as:
        differentiability = shared.output_differentiability
    corrects, when = fields.get("corrects_upstream"), fields.get("when")
    entry = Entry(
        schema_text=raw.schema_text,
        formulas=tuple(formulas),
        corrects_upstream=_scalar(corrects[1], path, "corrects_upstream") if corrects else None,
        when=parse_condition(when[1], skeleton, path, corrects is not None) if when else None,
        output_differentiability=differentiability or None,
        in_place_of=in_place or None,
        same_as=shared.name if same_as else None,
        location=raw.location,
    )
    check_terms(entry, helpers)
    return entry


def parse_schema(text: str, location: Location) -> torch._C.FunctionSchema:
    try:
        schema = torch._C.parse_schema("aten::" + text)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0].removesuffix(" here:")
        raise DerivativesError(location, f"schema does not parse: {first_line}") from None
    name = Entry(schema_text=text, formulas=()).name
    installed = installed_schema(name)
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


def parse_formula(outputs: tuple[str, ...], node, entry: Entry, path: str) -> Formula:
    location = _at(path, node)
    if isinstance(node, yaml.ScalarNode):
        if node.value in KEYWORDS:
            raise DerivativesError(location, f"{node.value} is said of one input: write it under the output, "
                                             f"'{outputs[0]}:' then '<input>: {node.value}' on the next line")
        return Formula(outputs, Whole(Expression(node.value)), location)
    if not isinstance(node, yaml.MappingNode):
        raise DerivativesError(location, f"formula for '{', '.join(outputs)}' must be an expression or a mapping input -> term")
    by_name = {a.name: a for a in entry.arguments}
    terms = []
    for key_node, value in node.value:
        argument = _tensor_input(by_name, key_node.value, _at(path, key_node))
        terms.append(Term(argument.name, parse_term_body(argument, value, entry, path), _at(path, value)))
    return Formula(outputs, PerInput(tuple(terms)), location)


def parse_term_body(argument, node, entry: Entry, path: str):
    location = _at(path, node)
    if isinstance(node, yaml.MappingNode):
        fields = {k.value: v for k, v in node.value}
        reason = fields.get("not_implemented")
        if set(fields) != {"not_implemented"} or not isinstance(reason, yaml.ScalarNode) or not reason.value.strip():
            raise DerivativesError(location, f"a mapping under an input must be 'not_implemented: <reason>', e.g. "
                                             f"{argument.name}: {{not_implemented: PyTorch's backward has no formula for it}}")
        return NotImplemented_(reason.value)
    text = _scalar(node, path, argument.name)
    if text == "not_implemented":
        raise DerivativesError(location, f"not_implemented needs a reason: "
                                         f"{argument.name}: {{not_implemented: <why PyTorch's backward has none>}}")
    keyword = KEYWORDS.get(text)
    if isinstance(keyword, AutoLinear):
        if not argument.is_tensor:
            raise DerivativesError(location, f"auto_linear needs a Tensor input; {argument.name} is {argument.type}: write its term")
        if len(entry.outputs) != 1:
            raise DerivativesError(location, f"auto_linear needs an overload with one output; {entry.name} has "
                                             f"{len(entry.outputs)}: write the call, e.g. {entry.op_expression}(...)[0]")
    return keyword if keyword is not None else Expression(text)


def check_terms(entry: Entry, helpers: frozenset[str]) -> None:
    """Names and syntax of every expression, and the per-input rules, against this entry's
    schema; also run again on the formulas an entry takes through same_as."""
    arguments, outputs = entry.arguments, entry.outputs
    declared = {t.input: t for f in entry.formulas if isinstance(f.body, PerInput)
                for t in f.body.terms if isinstance(t.body, NonDifferentiable)}
    for formula in entry.formulas:
        for output in formula.outputs:
            if output not in outputs:
                raise DerivativesError(formula.location, f"output '{output}' does not exist; {entry.name}'s outputs are {', '.join(outputs)}")
        if isinstance(formula.body, Whole):
            names = check_expression(formula.body.expression.text, arguments, outputs, helpers, formula.location, f"'{formula.key}'")
            _refuse_undeclared_tangents(names, declared, formula.location)
            continue
        by_name = {a.name: a for a in arguments}
        for term in formula.body.terms:
            _tensor_input(by_name, term.input, term.location)
            if term.input in declared and declared[term.input] is not term:
                raise DerivativesError(term.location, f"{term.input} is declared non_differentiable at {declared[term.input].location}: "
                                                      f"remove its term or that declaration")
            if not isinstance(term.body, Expression):
                continue
            names = check_expression(term.body.text, arguments, outputs, helpers, term.location, f"'{formula.key}' (term of {term.input})")
            foreign = sorted(n for n in names if n.endswith("_t") and n != f"{term.input}_t" and n[:-2] in by_name)
            if foreign:
                raise DerivativesError(term.location, f"the term of {term.input} may only use its own tangent {term.input}_t, not {', '.join(foreign)}")


def _tensor_input(by_name, name, location):
    argument = by_name.get(name)
    if argument is None or not argument.carries_tangent:
        tensors = ", ".join(a.name for a in by_name.values() if a.carries_tangent)
        raise DerivativesError(location, f"'{name}' is not a Tensor input of this overload; inputs are {tensors}")
    return argument


def _refuse_undeclared_tangents(names, declared, location) -> None:
    for name in sorted(names):
        if name.endswith("_t") and name[:-2] in declared:
            raise DerivativesError(location, f"'{name}' is the tangent of {name[:-2]}, declared non_differentiable at "
                                             f"{declared[name[:-2]].location}: it is never unpacked; use {name[:-2]}_p")


def parse_same_as(node, formula_fields, entry: Entry, earlier: dict[str, Entry], path, helpers) -> Entry:
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
    here = {a.name: a for a in entry.arguments}
    used = _arguments_used(shared)
    for argument in shared.arguments:
        if argument.name not in used:
            continue
        mine = here.get(argument.name)
        if mine is None:
            raise DerivativesError(location, f"same_as: {name}'s formulas use '{argument.name}', which "
                                             f"{entry.name} does not take; write its formulas out")
        if mine.type != argument.type:
            raise DerivativesError(location, f"same_as: '{argument.name}' is {argument.type} in {name} but {mine.type} "
                                             f"here; write its formulas out")
    try:
        check_terms(Entry(schema_text=entry.schema_text, formulas=shared.formulas), helpers)
    except DerivativesError as error:
        raise DerivativesError(location, f"same_as: {name}'s formula does not fit {entry.name}: {error.message}") from None
    return shared


def _arguments_used(entry: Entry) -> set[str]:
    """The arguments the entry's formulas read: x for x_p, x_t or a plain x, every input
    with a term, and every argument of an auto_linear call."""
    names = set()
    for formula in entry.formulas:
        for expression in formula.expressions():
            for name in expression.names:
                names |= {name, name.removesuffix("_p").removesuffix("_t")}
        if isinstance(formula.body, PerInput):
            names |= {t.input for t in formula.body.terms}
            if any(isinstance(t.body, AutoLinear) for t in formula.body.terms):
                names |= {a.name for a in entry.arguments}
    return names


def parse_in_place_of(node, entry: Entry, formulas, path) -> str:
    """`in_place_of: <overload>`: an in-place overload computed as its out-of-place entry,
    then copied into self (copy_ has its own forward formula, so self's tangent follows)."""
    location = _at(path, node)
    functional = "aten::" + _scalar(node, path, "in_place_of")
    if formulas:
        raise DerivativesError(location, "an in_place_of entry takes its tangent from the out-of-place overload; remove its formulas")
    arguments = entry.schema.arguments
    mutated = [a.name for a in arguments if a.alias_info is not None and a.alias_info.is_write]
    if mutated != ["self"] or len(entry.schema.returns) != 1:
        raise DerivativesError(location, f"in_place_of needs an overload that writes into self and returns it; {entry.name} does not")
    installed = installed_schema(functional)
    if installed is None:
        raise DerivativesError(location, f"unknown overload {functional} in in_place_of")
    if [a.name for a in torch._C.parse_schema("aten::" + installed).arguments] != [a.name for a in arguments]:
        raise DerivativesError(location, f"{functional} does not take the arguments of {entry.name}")
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


def parse_condition(node, entry: Entry, path, corrects_upstream: bool) -> str:
    """`when: <expression>` over the entry's non-Tensor arguments, its Tensor arguments'
    dtypes and the flag `outer_derivative`: where it is false, the override calls PyTorch's
    kernel unchanged, so upstream's own formula (or error) stays."""
    location = _at(path, node)
    expression = _scalar(node, path, "when")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise DerivativesError(location, f"condition 'when' is not valid Python: {error.msg}: {expression}") from None
    plain = {a.name for a in entry.arguments if not a.carries_tangent}
    allowed = (f"the non-Tensor arguments ({', '.join(sorted(plain)) or 'none'}), the dtypes of the Tensor "
               f"arguments, torch and the flag {OUTER_DERIVATIVE}")
    dtype_only = _names_read_for_dtype(tree)
    for name in sorted(free_names(tree)):
        if name in plain or name in dir(builtins) or name == "torch":
            continue
        if name == OUTER_DERIVATIVE:
            check_outer_derivative(tree, entry, corrects_upstream, location)
            continue
        if any(a.name == name for a in entry.arguments):
            if name in dtype_only:
                continue
            raise DerivativesError(
                location,
                f"condition 'when' may not use the Tensor argument '{name}' except as {name}.dtype: it "
                f"is decided before tangents are unpacked, from {allowed}",
            )
        raise DerivativesError(location, f"unknown name '{name}' in condition 'when'; it may use {allowed}")
    return expression


def _names_read_for_dtype(tree: ast.AST) -> set[str]:
    """Names that appear in `tree` only as `<name>.dtype` (a dual tensor's dtype is its primal's)."""
    dtype_reads = {id(node.value) for node in ast.walk(tree)
                   if isinstance(node, ast.Attribute) and node.attr == "dtype" and isinstance(node.value, ast.Name)}
    names = [node for node in ast.walk(tree) if isinstance(node, ast.Name)]
    return {n.id for n in names} - {n.id for n in names if id(n) not in dtype_reads}


def check_outer_derivative(tree: ast.AST, entry: Entry, corrects_upstream: bool, location: Location) -> None:
    """`outer_derivative` keeps upstream's formula wherever nothing differentiates the tangent:
    only an entry over an upstream formula has one to keep, and the flag takes no arguments."""
    if any(a.name == OUTER_DERIVATIVE for a in entry.arguments):
        raise DerivativesError(location, f"'{OUTER_DERIVATIVE}' is an argument of this overload; the flag cannot be used here")
    if not corrects_upstream:
        raise DerivativesError(
            location,
            f"condition '{OUTER_DERIVATIVE}' needs 'corrects_upstream: <reason>': where it is false "
            f"the override falls back to upstream's own formula, which only an entry correcting "
            f"one has; an entry for an overload without upstream formula applies always",
        )
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == OUTER_DERIVATIVE:
            raise DerivativesError(
                location,
                f"'{OUTER_DERIVATIVE}' is a flag, not a function: write it bare (when: {OUTER_DERIVATIVE}); "
                f"it looks at every Tensor argument of the call",
            )


def check_expression(expression, arguments, outputs, helpers, location, what) -> set[str]:
    """Syntax and names; returns the free names the expression uses."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise DerivativesError(location, f"formula for {what} is not valid Python: {error.msg}: {expression}") from None
    free = free_names(tree)
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


def _scalar(node, path, what) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise DerivativesError(_at(path, node), f"'{what}' must be a single line of text")
    return node.value


def _at(path: str, node: yaml.Node) -> Location:
    return Location(path, node.start_mark.line + 1)
