"""Model -> Python source of torch_fwdad/_generated/jvp_rules.py."""

from __future__ import annotations

import ast

from .model import Entry, Formula

STAMP = (
    "# @generated from derivatives.yaml by `python -m codegen`. Do not edit:\n"
    "# change derivatives.yaml or torch_fwdad/formulas, then rerun `python -m codegen`.\n"
)


def emit_module(entries: tuple[Entry, ...], helpers_used: tuple[str, ...]) -> str:
    parts = [
        STAMP,
        '"""Forward rules for aten overloads, one function per derivatives.yaml entry."""\n\n',
        "import torch  # noqa: F401  (formulas may name torch)\n\n",
        "from torch_fwdad.engine import BuiltinEntry\n",
        "from torch_fwdad.formulas import (  # noqa: F401\n",
        *(f"    {name},\n" for name in sorted(set(helpers_used) | {"add_tangents"})),
        ")\n",
    ]
    for entry in entries:
        if not entry.in_place_of:
            parts.append("\n\n" + emit_rule(entry))
        if entry.when:
            parts.append("\n\n" + emit_condition(entry))
    parts.append("\n\nENTRIES = (\n")
    for entry in entries:
        corrects = f", corrects_upstream={entry.corrects_upstream!r}" if entry.corrects_upstream else ""
        when = f", when={entry.condition_name}" if entry.when else ""
        differentiability = f", output_differentiability={entry.output_differentiability!r}" if entry.output_differentiability else ""
        in_place = f", in_place_of={entry.in_place_of!r}" if entry.in_place_of else ""
        rule = "None" if entry.in_place_of else entry.function_name
        parts.append(
            f"    BuiltinEntry({entry.name!r}, {entry.schema!r}, {rule}, "
            f"{str(entry.location)!r}{corrects}{when}{differentiability}{in_place}),\n"
        )
    parts.append(")\n")
    return "".join(parts)


def emit_rule(entry: Entry) -> str:
    primal_names = [f"{a.name}_p" if a.carries_tangent else a.name for a in entry.arguments]
    tangent_names = [f"{a.name}_t" if a.carries_tangent else "_" for a in entry.arguments]
    lines = [
        f"def {entry.function_name}(primals, tangents, outputs):",
        f"    # {entry.location}: {entry.schema}",
        *([f"    # same_as: {entry.same_as}, whose formulas follow"] if entry.same_as else []),
        f"    {_unpack(primal_names)} = primals",
        f"    {_unpack(tangent_names)} = tangents",
        # a single output arrives as the tensor itself, several as a tuple
        f"    {', '.join(entry.outputs)} = outputs",
    ]
    if "op" in _names_read(entry) and "op" not in {a.name for a in entry.arguments}:
        lines.append(f"    op = {entry.op_expression}")
    by_output = {name: f for f in entry.formulas for name in f.outputs}
    results = []
    for output in entry.outputs:
        formula = by_output.get(output)
        if formula is None:
            results.append("None")
            continue
        variable = f"{output}_tangent"
        if output == formula.outputs[0]:  # a formula for several outputs is emitted once
            lines.extend(_emit_formula(formula, ", ".join(f"{name}_tangent" for name in formula.outputs)))
        results.append(variable)
    lines.append(f"    return {results[0] if len(results) == 1 else '(' + ', '.join(results) + ')'}")
    return "\n".join(lines) + "\n"


def emit_condition(entry: Entry) -> str:
    """when(arguments) -> bool, over the bound arguments in schema order (Tensors unused)."""
    used = {n.id for n in ast.walk(ast.parse(entry.when, mode="eval")) if isinstance(n, ast.Name)}
    names = [a.name if a.name in used and not a.carries_tangent else "_" for a in entry.arguments]
    return "\n".join([
        f"def {entry.condition_name}(arguments):",
        f"    # {entry.location}: when: {entry.when}",
        f"    {_unpack(names)} = arguments",
        f"    return {entry.when}",
    ]) + "\n"


def _emit_formula(formula: Formula, variable: str) -> list[str]:
    if formula.whole is not None:
        return [f"    {variable} = {formula.whole}"]
    # JAX-style: one linear term per input; inputs without a tangent cost nothing.
    lines = [f"    {variable} = None"]
    for name, expression in formula.per_input:
        lines += [f"    if {name}_t is not None:", f"        {variable} = add_tangents({variable}, {expression})"]
    return lines


def _names_read(entry: Entry) -> set[str]:
    expressions = [e for f in entry.formulas for e in ([f.whole] if f.whole is not None else [t for _, t in f.per_input])]
    return {n.id for e in expressions for n in ast.walk(ast.parse(e, mode="eval")) if isinstance(n, ast.Name)}


def _unpack(names: list[str]) -> str:
    return names[0] + "," if len(names) == 1 else ", ".join(names)
