"""Helpers for second-order tests: Hessians of a scalar function of a flat parameter vector.

Shared by the report-only samples (samples/backward_ops.py) and the tests of
forward-over-reverse (tests/test_backward_ops.py, tests/test_second_order_vision.py).
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def split(theta: torch.Tensor, *shapes) -> list[torch.Tensor]:
    """Views of consecutive pieces of the flat parameter vector, one per shape."""
    pieces, start = [], 0
    for shape in shapes:
        size = torch.Size(shape).numel()
        pieces.append(theta[start:start + size].reshape(shape))
        start += size
    return pieces


class OpsSeen(TorchDispatchMode):
    """Records the aten ops a computation dispatches, to prove a backward op is reached."""

    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func._schema.name.split("::")[1])
        return func(*args, **(kwargs or {}))


def fd_hessian(f, theta: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central differences of the reverse-mode gradient, one column per coordinate."""
    grad = torch.func.grad(f)
    columns = []
    for k in range(theta.numel()):
        step = torch.zeros_like(theta)
        step[k] = eps
        columns.append((grad(theta + step) - grad(theta - step)) / (2 * eps))
    return torch.stack(columns, dim=1)


def hvp_columns(f, theta: torch.Tensor) -> torch.Tensor:
    """The Hessian one Hessian-vector product (torch.func.jvp over torch.func.grad) at a time."""
    grad = torch.func.grad(f)
    basis = torch.eye(theta.numel(), dtype=theta.dtype)
    return torch.stack([torch.func.jvp(grad, (theta,), (e,))[1] for e in basis], dim=1)
