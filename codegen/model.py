"""The data model of derivatives.yaml: frozen dataclasses that remember where they came from.

Schemas and argument types are torch's own (torch._C.FunctionSchema, parsed once per
entry), and which arguments carry tangents is decided by torch.library's predicates
(torch._library.utils.is_tensor_like_type / is_tensorlist_like_type), the same ones
torch_fwdad.engine.schema uses at run time. Locations take no part in equality, so an
entry read back from its own YAML text (`to_yaml`) compares equal to the original: the
round trip `python -m codegen` asserts on every run over all of derivatives.yaml.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from typing import Union

import torch
import yaml
from torch._library.utils import is_tensor_like_type, is_tensorlist_like_type


@dataclass(frozen=True)
class Location:
    path: str
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


NOWHERE = Location("<model>", 0)


class DerivativesError(Exception):
    """A problem in derivatives.yaml, reported as `derivatives.yaml:LINE: message`."""

    def __init__(self, location: Location, message: str):
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


@dataclass(frozen=True)
class Argument:
    name: str
    type: torch._C.JitType
    kwarg_only: bool

    @property
    def is_tensor(self) -> bool:
        """Tensor or Tensor?."""
        return is_tensor_like_type(self.type)

    @property
    def is_tensor_list(self) -> bool:
        """Tensor[], Tensor?[] (or an optional list of them)."""
        return is_tensorlist_like_type(self.type)

    @property
    def carries_tangent(self) -> bool:
        return self.is_tensor or self.is_tensor_list

    @property
    def is_optional(self) -> bool:
        return isinstance(self.type, torch._C.OptionalType)


# ---- the value of one input's key in a per-input formula

@dataclass(frozen=True)
class Expression:
    """A Python expression (a whole formula, or one input's linear term)."""

    text: str

    def to_yaml(self) -> str:
        return self.text

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """The free names it reads (parsed once; parse checked the syntax)."""
        return frozenset(free_names(ast.parse(self.text, mode="eval")))


# The flag a `when:` condition may name besides the non-Tensor arguments: true when reverse
# mode or an outer torch.func transform can differentiate the call's tangent. The generated
# condition calls torch_fwdad.formulas' function of that name on every Tensor argument.
OUTER_DERIVATIVE = "outer_derivative"


def free_names(tree: ast.AST) -> set[str]:
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound


@dataclass(frozen=True)
class AutoLinear:
    """`auto_linear`: the overload is linear in this input; its term is the overload itself
    called with the tangent in place of the primal (see auto_linear_call)."""

    def to_yaml(self) -> str:
        return "auto_linear"


@dataclass(frozen=True)
class NonDifferentiable:
    """`non_differentiable`: the input gets no term and its tangent is never unpacked."""

    def to_yaml(self) -> str:
        return "non_differentiable"


@dataclass(frozen=True)
class NotImplemented_:
    """`not_implemented: <reason>`: PyTorch's backward has no derivative for this input
    either; a tangent on it raises (torch_fwdad.formulas.no_derivative)."""

    reason: str

    def to_yaml(self) -> str:
        return "{not_implemented: " + _quoted(self.reason) + "}"


TermBody = Union[Expression, AutoLinear, NonDifferentiable, NotImplemented_]


@dataclass(frozen=True)
class Term:
    input: str
    body: TermBody
    location: Location = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Whole:
    """One expression for the output(s), evaluated when any input carries a tangent."""

    expression: Expression


@dataclass(frozen=True)
class PerInput:
    """One linear term per input (JAX's defjvp), summed over the inputs with a tangent."""

    terms: tuple[Term, ...]

    @property
    def summed(self) -> tuple[Term, ...]:
        """The terms that contribute (declarations of non-differentiable inputs do not)."""
        return tuple(t for t in self.terms if not isinstance(t.body, NonDifferentiable))


@dataclass(frozen=True)
class Formula:
    """The tangent of one output, or of several outputs at once from one whole expression."""

    outputs: tuple[str, ...]
    body: Whole | PerInput
    location: Location = field(default=NOWHERE, compare=False)

    @property
    def key(self) -> str:
        return ", ".join(self.outputs)

    def expressions(self) -> tuple[Expression, ...]:
        """The Python expressions written in the formula (keywords expand elsewhere)."""
        if isinstance(self.body, Whole):
            return (self.body.expression,)
        return tuple(t.body for t in self.body.terms if isinstance(t.body, Expression))

    def to_yaml(self) -> str:
        if isinstance(self.body, Whole):
            return f"  {self.key}: {self.body.expression.text}\n"
        return f"  {self.key}:\n" + "".join(f"    {t.input}: {t.body.to_yaml()}\n" for t in self.body.terms)


@dataclass(frozen=True)
class Entry:
    schema_text: str  # after "- name:": the schema as torch prints it, without "aten::"
    formulas: tuple[Formula, ...]
    corrects_upstream: str | None = None
    when: str | None = None  # Python condition over non-Tensor arguments and outer_derivative; elsewhere upstream runs
    output_differentiability: tuple[bool, ...] | None = None  # False: floating output without tangent
    in_place_of: str | None = None  # "aten::index_reduce": computed by it, then copied into self
    same_as: str | None = None  # "aten::grid_sampler_2d": its formulas, checked against this schema
    location: Location = field(default=NOWHERE, compare=False)

    @functools.cached_property
    def schema(self) -> torch._C.FunctionSchema:
        return torch._C.parse_schema("aten::" + self.schema_text)

    @property
    def name(self) -> str:
        """Qualified overload: "aten::scatter_reduce.two", "aten::cholesky"."""
        return self.schema.name + (f".{self.schema.overload_name}" if self.schema.overload_name else "")

    @property
    def short_name(self) -> str:
        return self.name.split("::", 1)[1]

    @functools.cached_property
    def arguments(self) -> tuple[Argument, ...]:
        return tuple(Argument(a.name, a.type, a.kwarg_only) for a in self.schema.arguments)

    @property
    def outputs(self) -> tuple[str, ...]:
        """result, result0.. or the schema's own names (torch_fwdad.engine.schema.output_names)."""
        returns = self.schema.returns
        if returns and all(r.name for r in returns):
            return tuple(r.name for r in returns)
        return ("result",) if len(returns) == 1 else tuple(f"result{i}" for i in range(len(returns)))

    @property
    def non_differentiable(self) -> frozenset[str]:
        return frozenset(t.input for f in self.formulas if isinstance(f.body, PerInput)
                         for t in f.body.terms if isinstance(t.body, NonDifferentiable))

    @property
    def op_expression(self) -> str:
        """The overload as Python: torch.ops.aten.scatter_reduce.two."""
        return f"torch.ops.aten.{self.schema.name.split('::', 1)[1]}.{self.schema.overload_name or 'default'}"

    @property
    def when_outer_derivative(self) -> bool:
        """Whether `when` names the flag outer_derivative."""
        return bool(self.when) and OUTER_DERIVATIVE in Expression(self.when).names

    @property
    def condition_name(self) -> str:
        return "when_" + self.short_name.replace(".", "_")

    @property
    def function_name(self) -> str:
        return "jvp_" + self.short_name.replace(".", "_")

    def to_yaml(self) -> str:
        """The entry as derivatives.yaml text (without comments); parse gives it back."""
        lines = f"- name: {self.schema_text}\n"
        if self.same_as:
            lines += f"  same_as: {self.same_as.removeprefix('aten::')}\n"
        else:
            lines += "".join(f.to_yaml() for f in self.formulas)
        if self.in_place_of:
            lines += f"  in_place_of: {self.in_place_of.removeprefix('aten::')}\n"
        if self.output_differentiability:
            lines += f"  output_differentiability: [{', '.join(str(d) for d in self.output_differentiability)}]\n"
        if self.when:
            lines += f"  when: {_quoted(self.when)}\n"
        if self.corrects_upstream:
            lines += f"  corrects_upstream: {_quoted(self.corrects_upstream)}\n"
        return lines


def auto_linear_call(entry: Entry, input_name: str) -> str:
    """The overload called with `input_name`'s tangent in place of its primal.

    Every other Tensor input keeps its primal, except an optional one (Tensor?) whose own
    key is neither auto_linear nor non_differentiable: it is an additive term (a bias) and
    is passed as None, its contribution being its own term.
    """
    terms = {t.input: t.body for f in entry.formulas if isinstance(f.body, PerInput) for t in f.body.terms}

    def value(argument: Argument) -> str:
        if argument.name == input_name:
            return f"{argument.name}_t"
        if not argument.carries_tangent:
            return argument.name
        own = terms.get(argument.name)
        if argument.is_optional and own is not None and not isinstance(own, (AutoLinear, NonDifferentiable)):
            return "None"
        return f"{argument.name}_p"

    arguments = entry.arguments
    values = [value(a) for a in arguments if not a.kwarg_only]
    values += [f"{a.name}={value(a)}" for a in arguments if a.kwarg_only]
    return f"{entry.op_expression}({', '.join(values)})"


def _quoted(text: str) -> str:
    """Plain YAML scalar when it reads back unchanged, else double-quoted."""
    plain = yaml.safe_load(f"k: {text}")
    if isinstance(plain, dict) and plain.get("k") == text:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
