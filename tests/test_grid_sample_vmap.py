"""vmap over the grid_sample JVP, batched primals and tangents, against a Python loop.

torch 2.13's batching rule for the grid samplers splits its output by the wrong size
when input and grid are batched at different dimensions. Inside the JVP rule that
happened whenever a tangent was batched differently from the grid (an internal assert
in BatchRulesHelper.cpp, or a wrong shape); the rule now hands the sampler arguments
batched at the same dimension. Primals batched at two different dimensions are left out:
plain vmap of the primal alone is already wrong there, without torch_fwdad.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import torch_fwdad  # noqa: F401

BATCH = 3

CASES = {  # name: (input shape, grid shape, mode, padding)
    "2d-bilinear-zeros": ((2, 3, 5, 6), (2, 4, 4, 2), "bilinear", "zeros"),
    "2d-bicubic-border": ((2, 3, 5, 6), (2, 4, 4, 2), "bicubic", "border"),
    "2d-nearest-reflection": ((2, 3, 5, 6), (2, 4, 4, 2), "nearest", "reflection"),
    "3d-bilinear-reflection": ((2, 2, 3, 4, 5), (2, 3, 2, 3, 3), "bilinear", "reflection"),
}

# (input, grid) batch dims: one of them batched, or both at the same dimension
PRIMAL_DIMS = [(None, 0), (0, None), (0, 0), (None, 1), (1, None), (1, 1)]
TANGENT_DIMS = list(itertools.product([None, 0, 1], repeat=2))


def _batched(shape, dim, generator):
    if dim is not None:
        shape = (*shape[:dim], BATCH, *shape[dim:])
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def _sample_fn(mode, padding):
    return lambda x, grid: F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


def _loop(fn, args, dims):
    """fn over the batch one entry at a time, outputs stacked along dimension 0."""
    per_entry = [fn(*(a if d is None else a.select(d, i) for a, d in zip(args, dims))) for i in range(BATCH)]
    return torch.stack(per_entry)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("primal_dims", PRIMAL_DIMS, ids=str)
def test_vmap_over_jvp_matches_loop(case, primal_dims):
    x_shape, grid_shape, mode, padding = CASES[case]
    sample = _sample_fn(mode, padding)

    def tangent(x, grid, x_t, grid_t):
        return torch.func.jvp(sample, (x, grid), (x_t, grid_t))[1]

    generator = torch.Generator().manual_seed(0)
    for tangent_dims in TANGENT_DIMS:
        dims = (*primal_dims, *tangent_dims)
        args = [_batched(s, d, generator) for s, d in zip((x_shape, grid_shape) * 2, dims)]
        # clamp the grid inside [-1.1, 1.1]: a few taps outside for the padding modes
        args[1] = args[1].tanh() * 1.1
        torch.testing.assert_close(torch.vmap(tangent, in_dims=dims)(*args), _loop(tangent, args, dims),
                                   msg=lambda m: f"in_dims={dims}: {m}")


@pytest.mark.parametrize("case", ["2d-bilinear-zeros", "3d-bilinear-reflection"])
def test_vmap_over_jacfwd_in_the_grid_matches_loop(case):
    x_shape, grid_shape, mode, padding = CASES[case]
    jacobian = torch.func.jacfwd(_sample_fn(mode, padding), argnums=1)
    generator = torch.Generator().manual_seed(1)
    for dims in PRIMAL_DIMS:
        args = [_batched(x_shape, dims[0], generator), _batched(grid_shape, dims[1], generator).tanh()]
        torch.testing.assert_close(torch.vmap(jacobian, in_dims=dims)(*args), _loop(jacobian, args, dims),
                                   msg=lambda m: f"in_dims={dims}: {m}")
