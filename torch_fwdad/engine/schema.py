"""What the engine needs to know about an operator's schema, computed once per overload."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch._library.utils import is_tensor_like_type, is_tensorlist_like_type

_NO_DEFAULT = object()


@dataclass(frozen=True)
class OpSignature:
    """Argument layout of one overload: names, defaults and where the tensors are."""

    name: str
    arg_names: tuple[str, ...]
    defaults: tuple[object, ...]  # _NO_DEFAULT where the argument has none
    kwarg_only: tuple[bool, ...]
    tensor_args: tuple[int, ...]  # Tensor and Tensor?
    tensor_list_args: tuple[int, ...]  # Tensor[] and Tensor?[] (an optional list: None or a list)
    output_names: tuple[str, ...]  # "result", "result0".., or the schema's names

    @property
    def num_outputs(self) -> int:
        return len(self.output_names)

    @classmethod
    def from_schema(cls, schema: torch._C.FunctionSchema) -> OpSignature:
        # torch.library's own predicates over the schema's types (codegen's model uses them too)
        args = schema.arguments
        types = [a.type for a in args]
        return cls(
            name=qualified_name(schema),
            arg_names=tuple(a.name for a in args),
            defaults=tuple(a.default_value if a.has_default_value() else _NO_DEFAULT for a in args),
            kwarg_only=tuple(a.kwarg_only for a in args),
            tensor_args=tuple(i for i, t in enumerate(types) if is_tensor_like_type(t)),
            tensor_list_args=tuple(i for i, t in enumerate(types) if is_tensorlist_like_type(t)),
            output_names=output_names(schema),
        )

    def bind(self, args: tuple, kwargs: dict) -> list:
        """All arguments in schema order, keyword arguments put in place, defaults filled."""
        bound = list(args)
        for i in range(len(args), len(self.arg_names)):
            name = self.arg_names[i]
            if name in kwargs:
                bound.append(kwargs[name])
            elif self.defaults[i] is not _NO_DEFAULT:
                bound.append(self.defaults[i])
            else:
                raise TypeError(f"{self.name}() missing required argument '{name}'")
        return bound

    @cached_property
    def num_positional(self) -> int:
        return sum(1 for k in self.kwarg_only if not k)

    def split(self, bound: list) -> tuple[tuple, dict]:
        """Inverse of bind: positional arguments and keyword-only arguments."""
        n_pos = self.num_positional
        if n_pos == len(bound):
            return tuple(bound), {}
        return tuple(bound[:n_pos]), {self.arg_names[i]: bound[i] for i in range(n_pos, len(bound))}


def output_names(schema: torch._C.FunctionSchema) -> tuple[str, ...]:
    """Names used for outputs in derivatives.yaml: result, result0.., or the schema's own."""
    returns = schema.returns
    if all(r.name for r in returns) and returns:
        return tuple(r.name for r in returns)
    if len(returns) == 1:
        return ("result",)
    return tuple(f"result{i}" for i in range(len(returns)))


def qualified_name(schema: torch._C.FunctionSchema) -> str:
    """"aten::scatter_reduce.two", or "aten::cholesky" for a default overload."""
    return schema.name + (f".{schema.overload_name}" if schema.overload_name else "")
