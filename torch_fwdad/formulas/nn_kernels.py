"""CPU kernels behind torch.nn utilities: weight normalisation."""

from __future__ import annotations

import torch

__all__ = ["weight_norm_jvp_v", "weight_norm_jvp_g"]


def weight_norm_jvp_v(v_t, v, g, kernel_norms):
    """w = g v / ‖v‖, the norm over every dim but one (the dims where the kernel's norms
    output has size 1).

    dw = (g / ‖v‖) (dv - v ⟨v, dv⟩ / ‖v‖²), the projection of dv off v, scaled. The norm
    is recomputed from v: the kernel's norms output carries no tangent, and second order
    needs the norm's own derivative.
    """
    norms = _norm_like(v, kernel_norms)
    along_v = _sum_like(v * v_t, kernel_norms) / norms.square()
    return (g.reshape(norms.shape) / norms) * (v_t - v * along_v)


def weight_norm_jvp_g(g_t, v, kernel_norms):
    return v * (g_t.reshape(kernel_norms.shape) / _norm_like(v, kernel_norms))


def _norm_like(v, kernel_norms):
    return _sum_like(v.square(), kernel_norms).sqrt()


def _sum_like(x, kernel_norms):
    """Sum x over the dims where the kernel's norms have size 1, keeping them."""
    dims = [d for d in range(x.dim()) if kernel_norms.shape[d] == 1 and x.shape[d] != 1]
    return x.sum(dims, keepdim=True) if dims else x
