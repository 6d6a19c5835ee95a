"""The data model of derivatives.yaml: frozen dataclasses that remember where they came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    path: str
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class DerivativesError(Exception):
    """A problem in derivatives.yaml, reported as `derivatives.yaml:LINE: message`."""

    def __init__(self, location: Location, message: str):
        super().__init__(f"{location}: {message}")
        self.location = location


@dataclass(frozen=True)
class Argument:
    name: str
    type: str  # as torch prints it: "Tensor", "Tensor?", "Tensor[]", "int", ...

    @property
    def is_tensor(self) -> bool:
        # torch prints Tensor? as Optional[Tensor] and Tensor[] as List[Tensor]
        return self.type in ("Tensor", "Tensor?", "Optional[Tensor]")

    @property
    def is_tensor_list(self) -> bool:
        return self.type in ("Tensor[]", "Tensor?[]", "List[Tensor]", "List[Optional[Tensor]]")

    @property
    def carries_tangent(self) -> bool:
        return self.is_tensor or self.is_tensor_list


@dataclass(frozen=True)
class Formula:
    """The tangent of one output: one whole expression, or one linear term per input."""

    output: str  # "result", or "output, logsumexp" for a whole formula returning a tuple
    whole: str | None
    per_input: tuple[tuple[str, str], ...]  # (input name, expression), summed
    location: Location

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.output.split(", "))


@dataclass(frozen=True)
class Entry:
    schema: str  # as written, without "aten::"
    name: str  # qualified overload: "aten::scatter_reduce.two"
    arguments: tuple[Argument, ...]
    outputs: tuple[str, ...]  # result / result0.. / the schema's names
    formulas: tuple[Formula, ...]
    corrects_upstream: str | None
    location: Location
    when: str | None = None  # Python condition over non-Tensor arguments; elsewhere upstream runs
    output_differentiability: tuple[bool, ...] | None = None  # False: floating output without tangent
    in_place_of: str | None = None  # "aten::index_reduce": computed by it, then copied into self
    same_as: str | None = None  # "aten::grid_sampler_2d": formulas are that entry's, checked against this schema

    @property
    def condition_name(self) -> str:
        return "when_" + self.name.split("::", 1)[1].replace(".", "_")

    @property
    def op_expression(self) -> str:
        """The overload as Python: torch.ops.aten.scatter_reduce.two."""
        namespace, overload = self.name.split("::", 1)
        return f"torch.ops.{namespace}.{overload if '.' in overload else overload + '.default'}"

    @property
    def function_name(self) -> str:
        return "jvp_" + self.name.split("::", 1)[1].replace(".", "_")
