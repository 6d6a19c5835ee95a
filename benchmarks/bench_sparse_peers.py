"""The problems of bench_sparse.py in JAX, through asdex and sparsejac (optional peers).

Imported by `bench_sparse.py --peers` only; needs `pip install jax asdex sparsejac`, which
are never test dependencies. Every function mirrors torch_fwdad/sparse_ad/examples.py.
Times are the fastest of many jit-compiled calls (block_until_ready), float64, like ours.
"""

from __future__ import annotations

import time

import jax
import jax.experimental.sparse  # noqa: F401 - sparsejac's BCOO patterns
import jax.numpy as jnp

import asdex

jax.config.update("jax_enable_x64", True)

try:
    import sparsejac
except ImportError:  # asdex alone is enough
    sparsejac = None


def tridiagonal(n):
    def func(x):
        padded = jnp.pad(x, (1, 1))
        return padded[:-2] - 2 * x + padded[2:] + jnp.sin(x) * x
    return func, jnp.linspace(0, 1, n)


def brusselator(N, alpha=10.0, a=3.4, b=1.0):
    def func(state):
        u, v = state[..., 0], state[..., 1]

        def laplacian(w):
            return (jnp.roll(w, 1, 0) + jnp.roll(w, -1, 0) + jnp.roll(w, 1, 1) + jnp.roll(w, -1, 1) - 4 * w) * (N - 1) ** 2
        du = alpha * laplacian(u) + b + u * u * v - (a + 1) * u
        dv = alpha * laplacian(v) + a * u - u * u * v
        return jnp.stack([du, dv], axis=-1)
    grid = jnp.linspace(0, 1, N)
    u0 = 22 * (grid[None, :] * (1 - grid[None, :])) ** 1.5 * jnp.ones((N, 1))
    v0 = 27 * (grid[:, None] * (1 - grid[:, None])) ** 1.5 * jnp.ones((1, N))
    return func, jnp.stack([u0, v0], axis=-1)


def laplacian_energy(side):
    def func(u):
        return ((u[1:, :] - u[:-1, :]) ** 2).sum() + ((u[:, 1:] - u[:, :-1]) ** 2).sum()
    return func, jnp.linspace(0, 1, side * side).reshape(side, side)


def arrowhead(n):
    def func(x):
        return x[0] * (x[1:] ** 2).sum() + (x ** 4).sum()
    return func, jnp.linspace(0.5, 1.5, n)


def burgers_flux(n, nu=0.01):
    dx = 1.0 / n

    def func(u):
        flux = 0.5 * u * u
        right, left = jnp.roll(u, -1), jnp.roll(u, 1)
        return -(jnp.roll(flux, -1) - jnp.roll(flux, 1)) / (2 * dx) + nu * (right - 2 * u + left) / dx ** 2
    grid = jnp.linspace(0, 1, n + 1)[:-1]
    return func, jnp.sin(2 * jnp.pi * grid) + 0.5


PROBLEMS = {"tridiagonal": tridiagonal, "brusselator": brusselator, "laplacian_hessian": laplacian_energy,
            "arrowhead_hessian": arrowhead, "burgers_flux": burgers_flux}


def _best(call, min_run_time=0.6):
    """Fastest of many timed calls (after a warm-up one), as bench_sparse.py reports ours."""
    jax.block_until_ready(call())
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_run_time or len(times) < 5:
        t = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t)
    return min(times)


def _colors(coloring):
    for name in ("num_colors", "n_colors", "ncolors"):
        if hasattr(coloring, name):
            return getattr(coloring, name)
    return "?"


def peer_timings(name, size, kind):
    func, x = PROBLEMS[name](*size.values())
    primal = jax.jit(func)
    row = {}
    if kind == "hessian":
        colored = asdex.hessian_coloring(func, x)
        evaluate = jax.jit(asdex.hessian_from_coloring(func, colored))
    else:
        colored = asdex.jacobian_coloring(func, x)
        evaluate = jax.jit(asdex.jacobian_from_coloring(func, colored))
    row["asdex_primal"] = _best(lambda: primal(x))
    row["asdex"] = _best(lambda: evaluate(x))
    row["asdex_colors"] = _colors(colored)
    if sparsejac is not None and kind == "jacobian":
        shape = x.shape

        def flat(v):
            return func(v.reshape(shape)).reshape(-1)
        bcoo = asdex.jacobian_sparsity(flat, x.reshape(-1)).to_bcoo()  # never densified: n can be 10^5
        jac = jax.jit(sparsejac.jacfwd(flat, sparsity=bcoo))
        row["sparsejac_primal"] = row["asdex_primal"]
        row["sparsejac"] = _best(lambda: jac(x.reshape(-1)))
        row["sparsejac_colors"] = "-"
    return row
