"""`custom_jvp`: give a Python function a forward rule; reverse mode comes from its transpose.

Like `jax.custom_jvp`::

    @custom_jvp
    def f(x, y): ...

    @f.defjvp
    def f_jvp(primals, tangents):
        (x, y), (tx, ty) = primals, tangents
        return f(x, y), <linear in tx, ty>

The call runs through one `torch.autograd.Function` whose `jvp` calls the rule and whose
`backward` transposes it (`engine/transpose.py`'s `transpose_linear`), with `generate_vmap_rule`, so
forward_ad, torch.func.jvp/grad/vjp/jacfwd/jacrev/hessian/vmap and `.backward()` all use it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters
from torch._C._functorch import TransformType
from torch.utils import _pytree as pytree

from ..engine.tangent_check import check_tangent, differentiable
from ..engine.transpose import transpose_linear


class custom_jvp:
    """Decorator: `f` keeps its own forward computation; `@f.defjvp` supplies its JVP rule.

    The rule is called as `rule(*nondiff_args, primals, tangents, **kwargs)`: `primals` is the
    tuple of the other positional arguments (pytrees allowed), `tangents` has the same
    structure with a tensor for every tensor leaf (zeros where no tangent was given) and
    None for non-tensor leaves. It returns `(primal_out, tangent_out)` with `tangent_out`
    shaped like `f`'s output. Keyword arguments are configuration: never differentiated.
    The rule must be linear in the tangents; reverse mode is its transpose.
    """

    def __init__(self, fun: Callable, *, nondiff_argnums: tuple[int, ...] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(sorted(nondiff_argnums))
        self.jvp_rule: Callable | None = None
        self._in_rule = 0  # >0 while our own rule runs: it may call us for primal_out

    def defjvp(self, rule: Callable) -> Callable:
        self.jvp_rule = rule
        return rule

    def __call__(self, *args, **kwargs):
        if self.jvp_rule is None:
            raise RuntimeError(f"torch_fwdad: custom_jvp function {self.__name__} has no rule; define one with @{self.__name__}.defjvp")
        if self._in_rule:
            # primal_out inside our own rule is discarded; a nested Function there would
            # also break the vmap rule PyTorch generates for jvp (jacfwd, hessian).
            return self.fun(*args, **kwargs)
        _refuse_forward_over_forward(self.__name__)
        call = _Call.bind(self, args, kwargs)
        flat_out = _CustomJvpFunction.apply(call, *call.tensors)
        return pytree.tree_unflatten(list(flat_out), call.out_spec)

    def call_rule(self, args: tuple, tangents: tuple, kwargs: dict | None = None):
        """The rule on `f`'s arguments, `tangents` aligned with `args`: (primal_out, tangent_out)."""
        call = _Call.bind(self, args, kwargs or {})
        diff_tangents = tuple(t for i, t in enumerate(tangents) if i not in self.nondiff_argnums)
        return call.rule(call.tensors, call.tensor_leaves_of(diff_tangents))


@dataclass
class _Call:
    """One call of a custom_jvp function: how to rebuild its arguments from the flat tensors."""

    function: custom_jvp
    nondiff: tuple  # values of the nondiff_argnums, in order
    kwargs: dict
    leaves: list  # leaves of the differentiable positional arguments
    in_spec: pytree.TreeSpec
    tensor_positions: list[int]  # which leaves are tensors (the Function's inputs)
    out_spec: pytree.TreeSpec | None = field(default=None)

    @classmethod
    def bind(cls, function: custom_jvp, args: tuple, kwargs: dict) -> _Call:
        skip = set(function.nondiff_argnums)
        if skip and max(skip) >= len(args):
            raise TypeError(f"torch_fwdad: {function.__name__} was given {len(args)} positional arguments but nondiff_argnums={function.nondiff_argnums}")
        diff_args = tuple(a for i, a in enumerate(args) if i not in skip)
        leaves, in_spec = pytree.tree_flatten(diff_args)
        positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        nondiff = tuple(args[i] for i in function.nondiff_argnums)
        return cls(function, nondiff, kwargs, leaves, in_spec, positions)

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def who(self) -> str:
        return f"the jvp rule of custom_jvp function {self.name}"

    @property
    def tensors(self) -> tuple:
        return tuple(self.leaves[i] for i in self.tensor_positions)

    def tensor_leaves_of(self, tree) -> tuple:
        """The tensor-position leaves of a pytree shaped like the differentiable arguments."""
        leaves = pytree.tree_leaves(tree, is_leaf=lambda leaf: leaf is None)
        return tuple(leaves[i] for i in self.tensor_positions)

    def rebuild(self, tensors, fill=None) -> tuple:
        """The differentiable arguments with `tensors` in the tensor leaves (`fill` elsewhere)."""
        leaves = list(self.leaves) if fill is None else [fill(leaf) for leaf in self.leaves]
        for i, tensor in zip(self.tensor_positions, tensors):
            leaves[i] = tensor
        return pytree.tree_unflatten(leaves, self.in_spec)

    def positional(self, diff_args: tuple) -> tuple:
        """Reinsert the nondiff arguments at their positions."""
        args, diff, nondiff = [], iter(diff_args), iter(self.nondiff)
        for i in range(len(diff_args) + len(self.nondiff)):
            args.append(next(nondiff) if i in self.function.nondiff_argnums else next(diff))
        return tuple(args)

    def run(self, tensors) -> tuple:
        out = self.function.fun(*self.positional(self.rebuild(tensors)), **self.kwargs)
        flat, self.out_spec = pytree.tree_flatten(out)
        for path, leaf in pytree.tree_flatten_with_path(out)[0]:
            if not isinstance(leaf, torch.Tensor):
                raise TypeError(f"torch_fwdad: custom_jvp function {self.name} returned a {type(leaf).__name__} at output '{_describe(path)}'; outputs must be tensors")
        return tuple(flat)

    def rule(self, primals, tangents):
        """Call the user's rule; returns (primal_out, tangent_out) as given."""
        self.function._in_rule += 1
        try:
            result = self.function.jvp_rule(
                *self.nondiff, self.rebuild(primals), self.rebuild(tangents, fill=lambda leaf: None), **self.kwargs
            )
        finally:
            self.function._in_rule -= 1
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise RuntimeError(f"torch_fwdad: {self.who} must return a pair (primal_out, tangent_out), got {_kind(result)}")
        return result

    def flat_tangents(self, primals, tangents, outputs) -> tuple:
        """The rule's tangent output, checked against `f`'s outputs and flattened."""
        tangent_out = self.rule(primals, tangents)[1]
        flat, spec = pytree.tree_flatten(tangent_out, is_leaf=lambda leaf: leaf is None)
        if spec != self.out_spec:
            raise RuntimeError(
                f"torch_fwdad: {self.who} returned tangents structured as {_shape_of(spec)}; "
                f"they must be structured like the outputs, {_shape_of(self.out_spec)}"
            )
        for path, out, tangent in zip(_paths(self.out_spec), outputs, flat):
            if tangent is not None:
                check_tangent(self.who, path, out, tangent)
        return tuple(flat)


class _CustomJvpFunction(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(call: _Call, *tensors):
        return call.run(tensors)

    @staticmethod
    def setup_context(ctx, inputs, output):
        call, *tensors = inputs
        ctx.call = call
        ctx.save_for_forward(*tensors, *output)
        ctx.save_for_backward(*tensors)

    @staticmethod
    def jvp(ctx, _call_tangent, *tangents):
        saved = ctx.saved_tensors
        n = len(tangents)
        primals, outputs = saved[:n], saved[n:]
        tangents = tuple(torch.zeros_like(p) if t is None else t for p, t in zip(primals, tangents))
        return ctx.call.flat_tangents(primals, tangents, outputs)

    @staticmethod
    def backward(ctx, *grads):
        call, primals = ctx.call, ctx.saved_tensors
        wanted = [i for i, p in enumerate(primals) if ctx.needs_input_grad[1 + i] and differentiable(p)]

        def tangent_map(*wanted_tangents):
            tangents = [torch.zeros_like(p) for p in primals]
            for i, tangent in zip(wanted, wanted_tangents):
                tangents[i] = tangent
            return call.rule(primals, tangents)[1]

        zeros = [torch.zeros_like(primals[i]) for i in wanted]
        result: list[Any] = [None] * (1 + len(primals))
        for i, grad in zip(wanted, transpose_linear(tangent_map, zeros, pytree.tree_unflatten(list(grads), call.out_spec))):
            result[1 + i] = grad
        return tuple(result)


def _refuse_forward_over_forward(name: str) -> None:
    # torch.autograd.Function cannot nest jvp levels: its jvp runs with forward grad off
    # (an outer level sees a zero second derivative) or, with generate_vmap_rule, asserts.
    if torch.compiler.is_compiling():  # Dynamo cannot trace the interpreter stack; no graph break
        return
    jvp_levels = [i for i in retrieve_all_functorch_interpreters() if i.key() == TransformType.Jvp]
    if len(jvp_levels) > 1:
        raise NotImplementedError(
            f"torch_fwdad: forward-over-forward through custom_jvp function {name} is not supported "
            f"(torch.autograd.Function cannot nest jvp levels); use hessian/jacfwd(jacrev(...)) "
            f"or jacrev(jacfwd(...)) instead"
        )


def _paths(spec: pytree.TreeSpec) -> list[str]:
    dummy = pytree.tree_unflatten([0] * spec.num_leaves, spec)
    return [_describe(path) for path, _ in pytree.tree_flatten_with_path(dummy)[0]]


def _describe(path) -> str:
    return pytree.keystr(path) or "result"


def _shape_of(spec: pytree.TreeSpec) -> str:
    return repr(pytree.tree_unflatten(["*"] * spec.num_leaves, spec)).replace("'*'", "*")


def _kind(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"
