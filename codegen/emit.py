"""Model -> Python source of torch_fwdad/_generated/jvp_rules.py."""

from __future__ import annotations

import io
import tokenize

from .model import (
    OUTER_DERIVATIVE, AutoLinear, Entry, Expression, Formula, NotImplemented_, PerInput, Term, auto_linear_call,
)

STAMP = (
    "# @generated from derivatives.yaml by `python -m codegen`. Do not edit:\n"
    "# change derivatives.yaml or torch_fwdad/formulas, then rerun `python -m codegen`.\n"
)
REFUSAL = "no_derivative"  # the helper a not_implemented input's term calls (torch_fwdad.formulas)


def emit_module(entries: tuple[Entry, ...], helpers: frozenset[str]) -> str:
    parts = [
        STAMP,
        '"""Forward rules for aten overloads, one function per derivatives.yaml entry."""\n\n',
        "import torch  # noqa: F401  (formulas may name torch)\n\n",
        "from torch_fwdad.engine import BuiltinEntry\n",
        "from torch_fwdad.formulas import (  # noqa: F401\n",
        *(f"    {name},\n" for name in helpers_used(entries, helpers)),
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
            f"    BuiltinEntry({entry.name!r}, {entry.schema_text!r}, {rule}, "
            f"{str(entry.location)!r}{corrects}{when}{differentiability}{in_place}),\n"
        )
    parts.append(")\n")
    return "".join(parts)


def helpers_used(entries: tuple[Entry, ...], helpers: frozenset[str]) -> tuple[str, ...]:
    used = {"add_tangents"}
    for entry in entries:
        if entry.when_outer_derivative:
            used.add(OUTER_DERIVATIVE)
        for formula in entry.formulas:
            used |= {name for expression in formula.expressions() for name in expression.names} & helpers
            if isinstance(formula.body, PerInput) and any(isinstance(t.body, NotImplemented_) for t in formula.body.terms):
                used.add(REFUSAL)
    return tuple(sorted(used))


def emit_rule(entry: Entry) -> str:
    skipped = entry.non_differentiable
    primal_names = [f"{a.name}_p" if a.carries_tangent else a.name for a in entry.arguments]
    tangent_names = [f"{a.name}_t" if a.carries_tangent and a.name not in skipped else "_" for a in entry.arguments]
    lines = [
        f"def {entry.function_name}(primals, tangents, outputs):",
        f"    # {entry.location}: {entry.schema_text}",
        *([f"    # same_as: {entry.same_as}, whose formulas follow"] if entry.same_as else []),
        *([f"    # non_differentiable: {', '.join(a.name for a in entry.arguments if a.name in skipped)}"] if skipped else []),
        f"    {_unpack(primal_names)} = primals",
        f"    {_unpack(tangent_names)} = tangents",
        # a single output arrives as the tensor itself, several as a tuple
        f"    {', '.join(entry.outputs)} = outputs",
    ]
    if any("op" in e.names for f in entry.formulas for e in f.expressions()) and "op" not in {a.name for a in entry.arguments}:
        lines.append(f"    op = {entry.op_expression}")
    by_output = {name: f for f in entry.formulas for name in f.outputs}
    results = []
    for output in entry.outputs:
        formula = by_output.get(output)
        if formula is None:
            results.append("None")
            continue
        if output == formula.outputs[0]:  # a formula for several outputs is emitted once
            lines.extend(_emit_formula(entry, formula, ", ".join(f"{name}_tangent" for name in formula.outputs)))
        results.append(f"{output}_tangent")
    lines.append(f"    return {results[0] if len(results) == 1 else '(' + ', '.join(results) + ')'}")
    return "\n".join(lines) + "\n"


def emit_condition(entry: Entry) -> str:
    """when(arguments) -> bool, over the bound arguments in schema order (Tensors unused,
    except by the flag outer_derivative, which becomes a call on all of them)."""
    used = Expression(entry.when).names
    tensors = [a.name for a in entry.arguments if a.carries_tangent]
    flagged = entry.when_outer_derivative
    names = [a.name if a.name in used or (flagged and a.carries_tangent) else "_" for a in entry.arguments]
    condition = _call_flag(entry.when, f"{OUTER_DERIVATIVE}({', '.join(tensors)})") if flagged else entry.when
    return "\n".join([
        f"def {entry.condition_name}(arguments):",
        f"    # {entry.location}: when: {entry.when}",
        f"    {_unpack(names)} = arguments",
        f"    return {condition}",
    ]) + "\n"


def _call_flag(expression: str, call: str) -> str:
    """`expression` with each use of the name outer_derivative replaced by `call` (tokens,
    so a string that happens to contain the word is left alone)."""
    tokens = tokenize.generate_tokens(io.StringIO(expression).readline)
    starts = [t.start[1] for t in tokens if t.type == tokenize.NAME and t.string == OUTER_DERIVATIVE]
    for start in reversed(starts):
        expression = expression[:start] + call + expression[start + len(OUTER_DERIVATIVE):]
    return expression


def term_expression(entry: Entry, term: Term) -> str:
    """The Python a term stands for: as written, or what its keyword expands to."""
    if isinstance(term.body, AutoLinear):
        return auto_linear_call(entry, term.input)
    if isinstance(term.body, NotImplemented_):
        return f"{REFUSAL}({term.input}_t, {entry.short_name!r}, {term.input!r})"
    return term.body.text


def _emit_formula(entry: Entry, formula: Formula, variable: str) -> list[str]:
    if not isinstance(formula.body, PerInput):
        return [f"    {variable} = {formula.body.expression.text}"]
    # JAX-style: one linear term per input; inputs without a tangent cost nothing.
    lines = [f"    {variable} = None"]
    for term in formula.body.summed:
        keyword = "" if isinstance(term.body, Expression) else f"  # {term.input}: {term.body.to_yaml()}"
        lines += [f"    if {term.input}_t is not None:{keyword}",
                  f"        {variable} = add_tangents({variable}, {term_expression(entry, term)})"]
    return lines


def _unpack(names: list[str]) -> str:
    return names[0] + "," if len(names) == 1 else ", ".join(names)
