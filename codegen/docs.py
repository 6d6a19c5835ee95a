"""Model -> docs/reference.md: every derivatives.yaml entry with its formula(s), plus the
rules that torch_fwdad/formulas modules register from Python (found by reading their source,
not by importing torch_fwdad, so that a broken generated file cannot break this page)."""

from __future__ import annotations

import ast
import os
import re

from .emit import term_expression
from .model import Entry, Expression, Formula, NonDifferentiable, PerInput
from .parse import SECTION, sections

STAMP = (
    "<!-- @generated from derivatives.yaml by `python -m codegen`. Do not edit: change\n"
    "     derivatives.yaml (or codegen/docs.py), then rerun `python -m codegen`. -->\n"
)


def emit_reference(entries: tuple[Entry, ...], yaml_text: str, torch_version: str,
                   upstream_status: dict[str, str], python_rules: list[tuple[str, str, int]]) -> str:
    """`upstream_status`: entry name -> how the generating torch treats it (see status_for).
    `python_rules`: (operator, module path, line) of register_jvp calls in formula modules."""
    sections = _sections(yaml_text, entries)
    parts = [
        STAMP,
        "\n# Reference: forward formulas of torch_fwdad\n\n",
        f"Generated from [`derivatives.yaml`](../derivatives.yaml) with torch {torch_version}: "
        f"{len(entries)} aten overloads, and {len(python_rules)} operators registered from Python.\n\n",
        "**Which torch an entry applies to.** The schemas below are those of torch "
        f"{torch_version} (codegen refuses an entry whose schema differs from the installed "
        "torch's). At `import torch_fwdad`, each entry is installed only if the installed torch "
        "has the overload with this schema *and* has no forward formula of its own for it "
        "(read from torch's packaged derivatives table); otherwise it is skipped automatically, "
        "so a torch that gains a formula keeps its own. `corrects_upstream` entries are "
        "installed over torch's formula, for the reason given. At run time, "
        "`torch_fwdad.builtin_status` says for every entry whether it was installed or why "
        "not, and `torch_fwdad.registered_ops()` lists the active rules.\n\n",
        "**Notation** (the header of derivatives.yaml is the full manual): `x_p` is the "
        "primal of Tensor input `x`, `x_t` its tangent (None when it carries none), `result` "
        "(or the output's name) the primal output. A formula is either one *whole* expression, "
        "or one linear term per input, summed over the inputs that carry a tangent (inputs "
        "without one cost nothing). Helpers are in `torch_fwdad/formulas/`. Keywords of an input's "
        "term: `auto_linear` (the overload itself, called with the tangent in place of the primal), "
        "`non_differentiable` (no term, its tangent is not read), `not_implemented` (PyTorch's "
        "backward has no derivative there either: a tangent raises); `same_as` gives an entry "
        "the formulas of another.\n\n",
        "## Contents\n\n",
    ]
    for title, members in sections:
        links = ", ".join(f"[`{_short(e)}`](#{_anchor(e)})" for e in members)
        parts.append(f"- **{title}**: {links}\n")
    if python_rules:
        parts.append("- **registered from Python**: " + ", ".join(f"`{op}`" for op, _, _ in python_rules) + "\n")
    for title, members in sections:
        parts.append(f"\n## {title[:1].upper() + title[1:]}\n")
        for entry in members:
            parts.append("\n" + _entry(entry, upstream_status.get(entry.name, ""), _comment_above(yaml_text, entry)))
    if python_rules:
        parts.append(
            "\n## Registered from Python\n\n"
            "Operators outside aten (custom ops of torch itself) get their rules from "
            "`register_jvp` calls in `torch_fwdad/formulas/`, at import, when the installed "
            "torch has the operator. Their formulas are Python functions:\n\n"
            "| Operator | Registered at |\n|---|---|\n"
        )
        for op, path, line in python_rules:
            parts.append(f"| `{op}` | [`{path}:{line}`](../{path}#L{line}) |\n")
    return "".join(parts)


def _entry(entry: Entry, status: str, comment: str = "") -> str:
    line = entry.location.line
    lines = [
        f'<a id="{_anchor(entry)}"></a>\n### `{entry.name}`\n',
        f"```\n{entry.schema_text}\n```\n",
        f"[`derivatives.yaml:{line}`](../derivatives.yaml#L{line})" + (f" · {status}" if status else "") + "\n",
    ]
    if comment:
        lines.append(comment + "\n")
    if entry.corrects_upstream:
        lines.append(f"Corrects upstream: {entry.corrects_upstream}\n")
    if entry.when:
        flag = (", where `outer_derivative` means that reverse mode or an outer torch.func grad/jvp "
                "can differentiate the tangent") if entry.when_outer_derivative else ""
        lines.append(f"Applies when `{_code(entry.when)}`{flag}; otherwise PyTorch's own kernel and formula run unchanged.\n")
    if entry.in_place_of:
        lines.append(f"- computed as `{entry.in_place_of}`, then copied into `self` (`copy_` carries the tangent)")
    if entry.same_as:
        lines.append(f"- same formulas as [`{entry.same_as}`](#{_anchor_of(entry.same_as)}) (`same_as`)")
    for formula in entry.formulas:
        lines.extend(_formula(entry, formula))
    no_tangent = [o for o in entry.outputs if o not in {n for f in entry.formulas for n in f.outputs}]
    if no_tangent and len(entry.outputs) > 1:
        lines.append(f"- no tangent: {', '.join(f'`{o}`' for o in no_tangent)}")
    if entry.output_differentiability:
        declared = [o for o, d in zip(entry.outputs, entry.output_differentiability) if not d]
        lines.append(f"- declared not differentiable: {', '.join(f'`{o}`' for o in declared)}")
    return "\n".join(lines) + "\n"


def _comment_above(yaml_text: str, entry: Entry) -> str:
    """The '#' comment lines directly above an entry (its conventions), as one paragraph."""
    lines = yaml_text.splitlines()[:entry.location.line - 1]
    comment: list[str] = []
    while lines and lines[-1].startswith("#") and not SECTION.match(lines[-1]):
        comment.insert(0, lines.pop()[1:].strip())
    return " ".join(line for line in comment if line)


def _formula(entry: Entry, formula: Formula) -> list[str]:
    if not isinstance(formula.body, PerInput):
        return [f"- `{formula.key}` = `{_code(formula.body.expression.text)}`"]
    terms = []
    for term in formula.body.terms:
        if isinstance(term.body, Expression):
            terms.append(f"  - from `{term.input}`: `{_code(term.body.text)}`")
        elif isinstance(term.body, NonDifferentiable):
            terms.append(f"  - `{term.input}`: `non_differentiable` (no term; its tangent is not read)")
        else:
            keyword = term.body.to_yaml()
            terms.append(f"  - from `{term.input}`: `{_code(keyword)}`, i.e. `{_code(term_expression(entry, term))}`")
    return [f"- `{formula.key}`, one term per input:", *terms]


def _code(expression: str) -> str:
    return expression.replace("|", "\\|").replace("`", "'")


def _short(entry: Entry) -> str:
    return entry.name.split("::", 1)[1]


def _anchor(entry: Entry) -> str:
    return _anchor_of(entry.name)


def _anchor_of(name: str) -> str:
    return "op-" + re.sub(r"[^a-z0-9]+", "-", name.split("::", 1)[1].lower()).strip("-")


def _sections(yaml_text: str, entries: tuple[Entry, ...]) -> list[tuple[str, list[Entry]]]:
    """Group entries under the '# ------ title' comment lines of derivatives.yaml that precede them."""
    starts = sections(yaml_text)
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        title = "entries"
        for number, name in starts:
            if number < entry.location.line:
                title = name
        groups.setdefault(title, []).append(entry)
    return [(title, members) for title, members in groups.items()]


def status_for(entry: Entry, has_upstream_forward: bool, version: str) -> str:
    if entry.corrects_upstream:
        return f"installed over torch {version}'s formula (corrects_upstream)"
    if has_upstream_forward:
        return f"skipped with torch {version}: torch has its own forward formula"
    return f"installed with torch {version}"


def python_registrations(package_dir: str, root: str) -> list[tuple[str, str, int]]:
    """register_jvp("ns::op", ...) calls with a literal operator name in the formula modules."""
    found = []
    for name in sorted(os.listdir(package_dir)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(package_dir, name)
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "register_jvp"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.append((node.args[0].value, os.path.relpath(path, root).replace(os.sep, "/"), node.lineno))
    return sorted(found)
