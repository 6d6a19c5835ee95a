"""The public entry points: `jacobian` / `hessian` in one call, `jacobian_plan` / `hessian_plan` to reuse."""

from __future__ import annotations

import torch

from torch_fwdad.sparse_ad.coloring import DEFAULT_ORDERING
from torch_fwdad.sparse_ad.inputs import FlatInputs
from torch_fwdad.sparse_ad.plans import JACOBIAN_MODES, HessianPlan, JacobianPlan, validate_choice


def jacobian_plan(sparsity, *, mode="auto", ordering=DEFAULT_ORDERING, refine=None, compile=False) -> JacobianPlan:
    """A reusable sparse-Jacobian plan. See `jacobian` for `sparsity`, `mode` and `refine`.

    compile=True evaluates the products through torch.compile (from the second call on, per
    function; the O(nnz) decompression stays eager gathers); worth it when the plan is evaluated
    many times. A call with the same function object, input signature and arguments as the
    plan's last unchecked call repeats it without validation or lookups.
    """
    return JacobianPlan(sparsity, ordering, refine, compile, mode=mode)


def hessian_plan(sparsity, *, method="auto", ordering=DEFAULT_ORDERING, refine=None, compile=False) -> HessianPlan:
    """A reusable sparse-Hessian plan. See `hessian` for `sparsity` and `method`; `jacobian_plan` for compile."""
    return HessianPlan(sparsity, ordering, refine, compile, method=method)


def jacobian(func, x, *, sparsity=None, mode="auto", chunk_size=None, output="sparse", check="auto",
             ordering=DEFAULT_ORDERING, refine=None):
    """Jacobian of `func` at `x`, shaped (*out_shape, *in_shape) like `torch.func.jacfwd`.

    sparsity: None (dense, computed by torch.func.jacfwd / jacrev and returned dense),
    "diagonal", BlockDiagonal(b), Banded(lower, upper), an explicit (outputs x inputs) pattern
    (bool tensor, torch sparse COO/CSR, scipy.sparse), or "detect" / "detect-numeric".
    mode: "column" (one JVP per colour), "row" (one VJP per colour), "auto" (fewer products).
    output: "sparse"/"coo" (torch sparse COO), "csr" (2-D flattened), "dense", "scipy" / "scipy-csc"
    (2-D scipy.sparse CSR / CSC arrays), "compressed" (a `Compressed`: the products and the colouring).
    check: "raise" or "warn" when the pattern misses true nonzeros (one extra JVP), None: no check;
    "auto" (default): "raise" at the first evaluation of a detected pattern, no check otherwise.
    refine: colouring refinement passes (DSatur + iterated greedy; never more colours),
    None for the per-kind default DEFAULT_REFINE, 0 for plain greedy.
    """
    if sparsity is None:
        return _dense_jacobian(func, x, mode, chunk_size)
    return jacobian_plan(sparsity, mode=mode, ordering=ordering, refine=refine)(
        func, x, chunk_size=chunk_size, output=output, check=check)


def hessian(func, x, *, sparsity=None, method="auto", chunk_size=None, output="sparse", check="auto",
            ordering=DEFAULT_ORDERING, refine=None):
    """Hessian of the scalar `func` at `x` from Hessian-vector products (forward-over-reverse).

    method: "star" (direct recovery), "acyclic" (fewer colours, recovery by substitution) or
    "auto" (the cheaper call, estimated: acyclic only when it saves more colours than its
    substitution costs, which depends on compile; star on ties). Other arguments as in `jacobian`.
    """
    if sparsity is None:
        FlatInputs.of(x)
        argnums = tuple(range(len(x))) if isinstance(x, tuple) else 0
        return torch.func.hessian(func, argnums=argnums)(*(x if isinstance(x, tuple) else (x,)))
    return hessian_plan(sparsity, method=method, ordering=ordering, refine=refine)(
        func, x, chunk_size=chunk_size, output=output, check=check)


def _dense_jacobian(func, x, mode, chunk_size):
    validate_choice("mode", mode, JACOBIAN_MODES)
    FlatInputs.of(x)
    args = x if isinstance(x, tuple) else (x,)
    argnums = tuple(range(len(args))) if isinstance(x, tuple) else 0
    if mode == "row":
        return torch.func.jacrev(func, argnums=argnums, chunk_size=chunk_size)(*args)
    return torch.func.jacfwd(func, argnums=argnums)(*args)
