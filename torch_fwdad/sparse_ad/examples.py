"""The benchmark problems of issues 6 and 15, shared by benchmarks/bench_sparse.py and the tests.

Each maker returns (func, x, kind) with kind "jacobian" or "hessian"; sizes are parameters so
the tests can run them small.
"""

from __future__ import annotations

import torch


def tridiagonal(n=10_000, dtype=torch.float64):
    """A 1-D diffusion stencil with a nonlinearity: 3 nonzeros per row."""
    def func(x):
        padded = torch.nn.functional.pad(x, (1, 1))
        return padded[:-2] - 2 * x + padded[2:] + torch.sin(x) * x
    return func, torch.linspace(0, 1, n, dtype=dtype), "jacobian"


def diagonal_square(n=10_000, dtype=torch.float64):
    return (lambda x: x ** 2), torch.linspace(0, 1, n, dtype=dtype), "jacobian"


def brusselator(N=32, dtype=torch.float64, alpha=10.0, a=3.4, b=1.0):
    """2-D Brusselator right-hand side on a periodic N x N grid, unknowns (N, N, 2)."""
    def func(state):
        u, v = state[..., 0], state[..., 1]

        def laplacian(w):
            return (torch.roll(w, 1, 0) + torch.roll(w, -1, 0) + torch.roll(w, 1, 1) + torch.roll(w, -1, 1) - 4 * w) * (N - 1) ** 2
        du = alpha * laplacian(u) + b + u * u * v - (a + 1) * u
        dv = alpha * laplacian(v) + a * u - u * u * v
        return torch.stack([du, dv], dim=-1)
    grid = torch.linspace(0, 1, N, dtype=dtype)
    u0 = 22 * (grid[None, :] * (1 - grid[None, :])) ** 1.5 * torch.ones(N, 1, dtype=dtype)
    v0 = 27 * (grid[:, None] * (1 - grid[:, None])) ** 1.5 * torch.ones(1, N, dtype=dtype)
    return func, torch.stack([u0, v0], dim=-1), "jacobian"


def laplacian_energy(side=64, dtype=torch.float64):
    """Sum of squared differences on a side x side grid: its Hessian is the 5-point Laplacian."""
    def func(u):
        return ((u[1:, :] - u[:-1, :]) ** 2).sum() + ((u[:, 1:] - u[:, :-1]) ** 2).sum()
    return func, torch.linspace(0, 1, side * side, dtype=dtype).reshape(side, side), "hessian"


def laplacian_squared_energy(side=64, dtype=torch.float64):
    """|L u|^2 + sum u^4 on a side x side grid (zero boundary): a 13-point Hessian, 9 acyclic colours."""
    def func(u):
        padded = torch.nn.functional.pad(u, (1, 1, 1, 1))
        lu = padded[2:, 1:-1] + padded[:-2, 1:-1] + padded[1:-1, 2:] + padded[1:-1, :-2] - 4 * u
        return (lu ** 2).sum() + (u ** 4).sum()
    return func, torch.linspace(0, 1, side * side, dtype=dtype).reshape(side, side), "hessian"


def arrowhead(n=3_200, dtype=torch.float64):
    """x[0] couples to every entry, the others only to themselves: an arrowhead Hessian."""
    def func(x):
        return x[0] * (x[1:] ** 2).sum() + (x ** 4).sum()
    return func, torch.linspace(0.5, 1.5, n, dtype=dtype), "hessian"


def banded_dense_row(n=10_000, dtype=torch.float64):
    """sum(cos(diff(x))) + x[0]^2 * sum(x): tridiagonal plus a dense row and column."""
    def func(x):
        return torch.cos(torch.diff(x)).sum() + x[0] ** 2 * x.sum()
    return func, torch.linspace(0, 1, n, dtype=dtype), "hessian"


def burgers_flux(n=100_000, dtype=torch.float64, nu=0.01):
    """Right-hand side of viscous Burgers on a periodic grid: central flux difference plus diffusion."""
    dx = 1.0 / n

    def func(u):
        flux = 0.5 * u * u
        right, left = torch.roll(u, -1), torch.roll(u, 1)
        return -(torch.roll(flux, -1) - torch.roll(flux, 1)) / (2 * dx) + nu * (right - 2 * u + left) / dx ** 2
    grid = torch.linspace(0, 1, n + 1, dtype=dtype)[:-1]
    return func, torch.sin(2 * torch.pi * grid) + 0.5, "jacobian"


PROBLEMS = {
    "tridiagonal": tridiagonal,
    "diagonal_square": diagonal_square,
    "brusselator": brusselator,
    "laplacian_hessian": laplacian_energy,
    "laplacian_squared_hessian": laplacian_squared_energy,
    "arrowhead_hessian": arrowhead,
    "banded_dense_row_hessian": banded_dense_row,
    "burgers_flux": burgers_flux,
}
