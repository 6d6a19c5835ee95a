"""Reverse mode derived from a forward rule: the VJP is the transpose of the linear JVP.

A JVP rule is linear in the tangents, `t -> J t`; its vector-Jacobian product is
`g -> J^T g`, the reverse-mode gradient of `<J t, g>` with respect to `t`. We take that
gradient with `torch.func.vjp` at `t = 0` (any point gives the same answer for a linear
map), with differentiable ops, so the derived backward can itself be differentiated
(hessian, double backward).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import _C
from torch._C._functorch import TransformType
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters
from torch._functorch.utils import enable_single_level_autograd_function
from torch.utils import _pytree as pytree

from .schema import OpSignature


def transpose_linear(linear_map: Callable, zero_tangents: Sequence[torch.Tensor], cotangents):
    """`J^T g` for the linear map `J` computed by `linear_map(*tangents)`.

    `cotangents` is aligned with the map's output pytree; outputs the map returns as None
    (no tangent) are skipped. Returns one gradient per tangent.
    """
    has_tangent: list[bool] = []  # per flat output, filled when vjp runs the map

    def flat_map(*tangents):
        flat = pytree.tree_leaves(linear_map(*tangents), is_leaf=lambda t: t is None)
        has_tangent[:] = [t is not None for t in flat]
        return tuple(t for t in flat if t is not None)

    outputs, pullback = torch.func.vjp(flat_map, *zero_tangents)
    flat_cotangents = pytree.tree_leaves(cotangents, is_leaf=lambda c: c is None)
    kept = [c for c, keep in zip(flat_cotangents, has_tangent) if keep]
    kept = [torch.zeros_like(o) if c is None else c for c, o in zip(kept, outputs)]
    return pullback(tuple(kept))


def transpose_refusal(op: torch._ops.OpOverload) -> str | None:
    """Why reverse mode cannot be derived for `op`, or None when it can."""
    if op.namespace == "aten":
        return "aten operators have PyTorch's own reverse mode"
    opdef = torch._library.custom_ops._maybe_get_opdef(op)
    if opdef is not None and opdef._backward_fn is not None:
        return "it already has reverse mode from register_autograd, which torch_fwdad leaves untouched"
    sig = OpSignature.from_schema(op._schema)
    if sig.tensor_list_args or any(sig.kwarg_only[i] for i in sig.tensor_args):
        return "it takes a list of tensors or a keyword-only tensor, which autograd.Function cannot differentiate"
    return None


def derived_autograd_kernel(op: torch._ops.OpOverload, rule: Callable, *, probe_linearity: bool = True) -> Callable:
    """An Autograd kernel for `op` whose backward transposes `rule(primals, tangents, output)`.

    With `probe_linearity`, the first backward outside vmap checks the rule on random
    tangents and refuses a non-linear one: its transpose would be silently wrong (a zero
    gradient for `t -> t**2`).

    A `_SingleLevelFunction`: it records a node on whichever autograd level dispatched to
    this kernel (eager, or one `torch.func.grad` level), so `grad`, `jacrev` and `hessian`
    work too. A plain autograd.Function re-enters functorch from inside the kernel and
    fails, which is why PyTorch's own `register_autograd` kernel refuses those transforms.
    """
    sig = OpSignature.from_schema(op._schema)
    linearity_unchecked = [probe_linearity]

    class DerivedBackward(torch.autograd.function._SingleLevelFunction):
        @staticmethod
        def forward(keyset, kwargs, *args):
            with _C._AutoDispatchBelowAutograd():
                return op.redispatch(keyset & _C._after_autograd_keyset, *args, **kwargs)

        @staticmethod
        def setup_context(ctx, inputs, output):
            _, kwargs, *args = inputs
            ctx.primals = tuple(sig.bind(tuple(args), kwargs))
            ctx.output = output

        @staticmethod
        def backward(ctx, *grads):
            primals = ctx.primals
            wanted = [i for i in sig.tensor_args if ctx.needs_input_grad[2 + i]]

            def tangent_map(*tangents):
                aligned = [None] * len(primals)
                for i, tangent in zip(wanted, tangents):
                    aligned[i] = tangent
                return rule(primals, tuple(aligned), ctx.output)

            zeros = [torch.zeros_like(primals[i]) for i in wanted]
            if linearity_unchecked[0] and not _inside_vmap():  # the check compares values
                _refuse_non_linear(op, tangent_map, zeros)
                linearity_unchecked[0] = False
            cotangents = grads[0] if sig.num_outputs == 1 else grads
            input_grads = [None] * (2 + len(primals))
            for i, grad in zip(wanted, transpose_linear(tangent_map, zeros, cotangents)):
                input_grads[2 + i] = grad
            return tuple(input_grads)

    DerivedBackward.__name__ = f"TransposedJvpFor_{op._namespace}_{op._opname}"

    def autograd_kernel(keyset, *args, **kwargs):
        if _C.is_grad_enabled() and _C._any_requires_grad(*args, **kwargs):
            with enable_single_level_autograd_function():  # as functorch does for its levels
                return DerivedBackward.apply(keyset, kwargs, *args)
        with _C._AutoDispatchBelowAutograd():
            return op.redispatch(keyset & _C._after_autograd_keyset, *args, **kwargs)

    return autograd_kernel


# rule(a·t1 + b·t2) is compared with a·rule(t1) + b·rule(t2); a + b != 1 also catches an affine rule
_A, _B = 2.0, -3.0


def _inside_vmap() -> bool:
    return any(i.key() == TransformType.Vmap for i in retrieve_all_functorch_interpreters())


def _refuse_non_linear(op, tangent_map: Callable, zeros: Sequence[torch.Tensor]) -> None:
    """One cheap random check that `tangent_map` is linear (see register_jvp's probe_linearity)."""
    generators = {}

    def random_like(z):
        generator = generators.setdefault(z.device, torch.Generator(device=z.device).manual_seed(0))
        return torch.randn(z.shape, dtype=z.dtype, device=z.device, generator=generator)

    t1, t2 = [random_like(z) for z in zeros], [random_like(z) for z in zeros]
    with torch.no_grad():
        flat = lambda tangents: pytree.tree_leaves(tangent_map(*tangents), is_leaf=lambda t: t is None)
        r1, r2, r12 = flat(t1), flat(t2), flat([_A * a + _B * b for a, b in zip(t1, t2)])
    for got, one, two in zip(r12, r1, r2):
        if got is None or one is None or two is None:
            continue
        expected = _A * one + _B * two
        scale = expected.abs().max().item() if expected.numel() else 0.0
        tolerance = 1e-3 if got.dtype in (torch.float16, torch.bfloat16) else 1e-4
        if not torch.allclose(got, expected, rtol=tolerance, atol=tolerance * max(scale, 1.0)):
            raise RuntimeError(
                f"torch_fwdad: the forward rule of {op} registered with transpose=True is not linear "
                f"in the tangents (rule({_A:g}·t1 - {-_B:g}·t2) differs from {_A:g}·rule(t1) - "
                f"{-_B:g}·rule(t2) on random tangents), so the reverse mode derived from it would be "
                f"wrong. Make the rule linear in the tangents, or pass probe_linearity=False to "
                f"register_jvp to skip this check."
            )
