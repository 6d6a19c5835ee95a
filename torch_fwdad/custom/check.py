"""`check_jvp`: test a forward rule before trusting it.

Two properties, in float64: the rule is linear in the tangents (reverse mode derived by
transposing it is only right then), and it agrees with central finite differences.
Works for `custom_jvp` functions and for operators given a rule with `register_jvp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.autograd.forward_ad as fwAD
from torch.utils import _pytree as pytree

from ..engine.registry import as_overload, rule_of
from ..engine.schema import OpSignature
from ..engine.tangent_check import differentiable
from .custom_jvp import custom_jvp

# rule(a·t1 + b·t2) is compared with a·rule(t1) + b·rule(t2); the message assumes b < 0
_A, _B = 2.0, -3.0


class JvpCheckError(AssertionError):
    """A forward rule failed check_jvp; the message says which property and which output."""


@dataclass(frozen=True)
class _Subject:
    """What check_jvp needs from a custom_jvp function or a registered operator."""

    name: str
    output_names: Callable[[object], list[str]]  # flat output names, given the output pytree
    primal: Callable[[tuple], object]  # args -> output pytree
    tangent: Callable[[tuple, tuple], list]  # args, tangents aligned with args -> flat output tangents
    call: Callable[[tuple], object]  # args -> output through the real dispatch path
    rule_primal: Callable[[tuple], object] | None = None  # custom_jvp only: the rule's primal_out


def check_jvp(f, example_inputs: tuple, *, kwargs: dict | None = None,
              eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0) -> None:
    """Raise JvpCheckError unless the rule of `f` is linear and matches finite differences.

    `f` is a custom_jvp function or an operator with a rule from register_jvp (custom_op,
    OpOverload or name); `example_inputs` are its positional arguments. Floating tensors
    are checked in float64 with random tangents drawn from `seed`.
    """
    subject = _subject(f, kwargs or {})
    args = tuple(pytree.tree_map_only(torch.Tensor, _to_double, tuple(example_inputs)))
    generator = torch.Generator().manual_seed(seed)
    t1, t2 = _random_tangents(args, generator), _random_tangents(args, generator)
    names = subject.output_names(subject.primal(args))
    _run_under_forward_ad(subject, args, t1)  # the rule's output checks: count, shape, dtype
    r1 = subject.tangent(args, t1)
    _check_linear(subject, names, args, t1, t2, r1, atol, rtol)
    _check_finite_differences(subject, names, args, t1, r1, eps, atol, rtol)
    if subject.rule_primal is not None:
        _check_close(subject, names, pytree.tree_leaves(subject.rule_primal(args)), pytree.tree_leaves(subject.primal(args)),
                     atol, rtol, "its primal_out differs from the function's output")


def _subject(f, kwargs: dict) -> _Subject:
    if isinstance(f, custom_jvp):
        return _Subject(
            name=f"custom_jvp function {f.__name__}",
            output_names=lambda out: [pytree.keystr(p) or "result" for p, _ in pytree.tree_flatten_with_path(out)[0]],
            primal=lambda args: f.fun(*args, **kwargs),
            tangent=lambda args, tangents: pytree.tree_leaves(f.call_rule(args, tangents, kwargs)[1], is_leaf=lambda t: t is None),
            rule_primal=lambda args: f.call_rule(args, _zeros_like_args(args), kwargs)[0],
            call=lambda args: f(*args, **kwargs),
        )
    op = as_overload(f)
    rule, sig = rule_of(op), OpSignature.from_schema(op._schema)

    def tangent(args, tangents):
        primals = tuple(sig.bind(args, kwargs))
        aligned = tuple(tangents) + (None,) * (len(primals) - len(tangents))  # keyword arguments: no tangent
        out_tangents = rule(primals, aligned, op(*args, **kwargs))
        return [out_tangents] if sig.num_outputs == 1 else list(out_tangents)

    return _Subject(name=str(op), output_names=lambda out: list(sig.output_names),
                    primal=lambda args: op(*args, **kwargs), tangent=tangent, call=lambda args: op(*args, **kwargs))


def _run_under_forward_ad(subject, args, tangents):
    with fwAD.dual_level():
        duals = pytree.tree_map(lambda a, t: a if t is None else fwAD.make_dual(a, t), args, tangents,
                                is_leaf=lambda leaf: leaf is None)
        subject.call(tuple(duals))


def _check_linear(subject, names, args, t1, t2, r1, atol, rtol):
    combined = _combine(_A, t1, _B, t2)
    r2, r12 = subject.tangent(args, t2), subject.tangent(args, combined)
    expected = [None if a is None else _A * a + _B * b for a, b in zip(r1, r2)]
    _check_close(subject, names, r12, expected, atol, rtol,
                 f"it is not linear in the tangents: rule({_A:g}·t1 - {-_B:g}·t2) differs from "
                 f"{_A:g}·rule(t1) - {-_B:g}·rule(t2). A JVP rule must be linear in the tangents, or the "
                 f"reverse mode derived from it is wrong")


def _check_finite_differences(subject, names, args, t1, r1, eps, atol, rtol):
    plus = pytree.tree_leaves(subject.primal(_combine(1.0, args, eps, t1)))
    minus = pytree.tree_leaves(subject.primal(_combine(1.0, args, -eps, t1)))
    numerical = [(p - m) / (2 * eps) if differentiable(p) else None for p, m in zip(plus, minus)]
    _check_close(subject, names, r1, numerical, atol, rtol, "it disagrees with central finite differences")


def _check_close(subject, names, actual, expected, atol, rtol, problem):
    for name, got, want in zip(names, actual, expected):
        if got is None or want is None:
            continue
        if not torch.allclose(got, want, atol=atol, rtol=rtol, equal_nan=True):
            worst = (got - want).abs().max().item()
            raise JvpCheckError(
                f"torch_fwdad.check_jvp: the rule of {subject.name} fails for output '{name}': {problem} "
                f"(max abs difference {worst:.3g}, atol {atol:g}, rtol {rtol:g})"
            )


def _combine(a, x, b, y):
    """a·x + b·y leaf by leaf over tensors; non-tensor leaves of x are kept."""
    def one(u, v):
        if isinstance(u, torch.Tensor) and v is not None:
            return a * u + b * v
        return u
    return tuple(pytree.tree_map(one, x, y, is_leaf=lambda leaf: leaf is None))


def _random_tangents(args, generator):
    return tuple(pytree.tree_map(
        lambda leaf: torch.randn(leaf.shape, dtype=leaf.dtype, generator=generator) if _is_diff_tensor(leaf) else None, args))


def _zeros_like_args(args):
    return tuple(pytree.tree_map(lambda leaf: torch.zeros_like(leaf) if _is_diff_tensor(leaf) else None, args))


def _to_double(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.is_complex():
        return tensor.to(torch.complex128)
    return tensor.double() if tensor.is_floating_point() else tensor


def _is_diff_tensor(leaf) -> bool:
    return isinstance(leaf, torch.Tensor) and differentiable(leaf)

