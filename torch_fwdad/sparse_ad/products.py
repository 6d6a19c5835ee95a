"""The products every stage is built from: JVPs, VJPs and HVPs of a flat function, batched by vmap.

Detection (numerically) and evaluation (with colour seeds) both call these; they know nothing
of patterns or colourings.
"""

from __future__ import annotations

import numpy as np
import torch


def one_hot_seeds(colors: np.ndarray, num_colors: int, like: torch.Tensor) -> torch.Tensor:
    """(num_colors, len(colors)) one-hot rows: seed c sums the columns (rows, variables) of colour c."""
    seeds = like.new_zeros(num_colors, len(colors))
    seeds[torch.from_numpy(colors).to(like.device), torch.arange(len(colors), device=like.device)] = 1
    return seeds


def jvp_products(flat_func, x_flat, seeds, chunk_size=None):
    def one(tangent):
        return torch.func.jvp(flat_func, (x_flat,), (tangent,))[1]
    return torch.func.vmap(one, chunk_size=chunk_size)(seeds)


def vjp_products(flat_func, x_flat, seeds_of_out_shape, chunk_size=None):
    """`seeds_of_out_shape` is a function of the output (its shape is known only after the forward pass)."""
    out, pullback = torch.func.vjp(flat_func, x_flat)
    seeds = seeds_of_out_shape(out)
    return torch.func.vmap(lambda u: pullback(u.reshape(out.shape))[0], chunk_size=chunk_size)(seeds), out.shape


def gradient_of(flat_func):
    """The gradient as jacrev of the scalar function. Not torch.func.grad: a JVP through grad's
    unbatched pullback fails in PyTorch on ops such as mse_loss ("ZeroTensors are immutable"),
    while jacrev's vmapped pullback, the one torch.func.hessian uses, works."""
    return torch.func.jacrev(_scalar(flat_func))


def hvp_products(flat_func, x_flat, seeds, chunk_size=None):
    """Forward-over-reverse: JVPs of the gradient."""
    grad = gradient_of(flat_func)

    def one(tangent):
        return torch.func.jvp(grad, (x_flat,), (tangent,))[1]
    return torch.func.vmap(one, chunk_size=chunk_size)(seeds)


def jvp(flat_func, x_flat, v):
    """One exact Jacobian-vector product (the probe's reference)."""
    return torch.func.jvp(flat_func, (x_flat,), (v,))[1]


def hvp(flat_func, x_flat, v):
    """One exact Hessian-vector product (the probe's reference)."""
    return torch.func.jvp(gradient_of(flat_func), (x_flat,), (v,))[1]


def _scalar(flat_func):
    def scalar_func(flat):
        out = flat_func(flat)
        if out.numel() != 1:
            raise ValueError(f"hessian needs func to return a single number, got shape {tuple(out.shape)}")
        return out.reshape(())
    return scalar_func
