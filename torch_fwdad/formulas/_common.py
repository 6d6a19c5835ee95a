"""Small pieces every family of formulas uses."""

from __future__ import annotations

import torch
from torch._C._functorch import TransformType
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

# Generated rules sum per-input terms with add_tangents and decide `when: outer_derivative`
# with outer_derivative; the rest is for the helper modules, which import it from here.
__all__ = ["add_tangents", "outer_derivative"]


def add_tangents(total: torch.Tensor | None, term: torch.Tensor | None) -> torch.Tensor | None:
    """Sum of per-input terms; the first term is taken as is and None (zero) is skipped."""
    if total is None or term is None:
        return term if total is None else total
    return total + term


def sum_tangents(*terms: torch.Tensor | None) -> torch.Tensor | None:
    """Sum of the terms present; None when every term is absent (a zero tangent)."""
    total = None
    for term in terms:
        if term is not None:
            total = add_tangents(total, term)
    return total


def zeros_if_none(tangent: torch.Tensor | None, primal: torch.Tensor) -> torch.Tensor:
    """For formulas that cannot skip a missing tangent term."""
    return torch.zeros_like(primal) if tangent is None else tangent


def outer_derivative_possible(*tensors: torch.Tensor | None) -> bool:
    """True when reverse mode or an outer torch.func transform may differentiate a rule.

    Rules check this before taking shortcuts that only compute values: writing over
    buffers autograd may have saved, or calling kernels whose own derivatives are missing.
    Outer torch.func transforms are invisible from inside a rule except by their count.
    """
    return any(t is not None and requires_grad_at_any_level(t) for t in tensors) or outer_transforms_around()


def outer_derivative(*arguments) -> bool:
    """derivatives.yaml's `when: outer_derivative`: True when something outside can
    differentiate the tangent this call computes, so upstream's formula, exact in value but
    not in how it depends on the inputs, must give way to a differentiable one.

    That is reverse mode (grad mode on and an argument, a Tensor or a list of them, requiring
    grad at any torch.func level), or a torch.func grad, vjp or jvp transform around the one
    computing this tangent. Unlike outer_derivative_possible, a vmap around (jacfwd) does not
    count: it only batches, and upstream's formula stays exact there.
    """
    if torch.is_grad_enabled() and any(requires_grad_at_any_level(t) for t in _tensors(arguments)):
        return True
    return _differentiating_transform_around()


def _tensors(arguments):
    for argument in arguments:
        if isinstance(argument, torch.Tensor):
            yield argument
        elif isinstance(argument, (list, tuple)):
            yield from (t for t in argument if isinstance(t, torch.Tensor))


_DIFFERENTIATING = (TransformType.Grad, TransformType.Jvp)


def _differentiating_transform_around() -> bool:
    if torch._C._functorch.peek_interpreter_stack() is None:
        return False
    # The innermost transform is the jvp computing this tangent; a grad there can only be
    # one around forward_ad's dual_level (which torch.func.jvp cannot hold inside).
    *outer, innermost = retrieve_all_functorch_interpreters()
    return innermost.key() == TransformType.Grad or any(i.key() in _DIFFERENTIATING for i in outer)


def requires_grad_at_any_level(t: torch.Tensor) -> bool:
    # Under torch.func.jvp the wrapper a rule sees does not require grad even when the
    # tensor beneath it does (a model whose parameters require grad): reverse mode there
    # differentiates the rule's tangent, so it counts as an outer derivative.
    return t.requires_grad or (torch._C._functorch.is_functorch_wrapped_tensor(t) and unwrapped(t).requires_grad)


def unwrapped(t: torch.Tensor | None) -> torch.Tensor | None:
    """The plain tensor under every torch.func wrapper (for values only)."""
    while t is not None and torch._C._functorch.is_functorch_wrapped_tensor(t):
        t = torch._C._functorch.get_unwrapped(t)
    return t


def plain_values(*tensors) -> bool:
    """True when the tensors (after unwrapping torch.func's) are plain strided CPU tensors that
    do not require grad, and no dispatch mode or compiler tracing is on: what other threads,
    a C++ kernel reading raw buffers, or out= writes into buffers a rule owns compute is then
    what this thread's ops would.

    Modes, tracing and transforms live in this thread's state, which workers do not share.
    """
    if torch.compiler.is_compiling():
        return False
    if torch._C._dispatch_tls_is_dispatch_key_included(_PYTHON_KEY):  # a dispatch mode is on
        return False
    # requires_grad after unwrapping: under torch.func.jvp, reverse mode beneath the transform
    # (a model whose parameters require grad) shows only on the unwrapped tensors.
    # A plain loop: rules call this per call, and a generator costs more than the tests.
    for t in tensors:
        if t is None:
            continue
        t = unwrapped(t)
        if type(t) is not torch.Tensor or t.requires_grad or not t.is_cpu or t.layout != torch.strided:
            return False
    return True


_PYTHON_KEY = torch._C.DispatchKey.Python


def outer_transforms_around() -> bool:
    """True inside a torch.func transform other than the one running this rule (nested jvp, grad, vmap)."""
    return len(torch._C._functorch.get_interpreter_stack() or ()) > 1  # C++ interpreters: no Python wrappers made
