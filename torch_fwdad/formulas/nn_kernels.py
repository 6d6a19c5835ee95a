"""CPU kernels behind torch.nn utilities: weight normalisation."""

from __future__ import annotations

import torch

from ._common import add_tangents

__all__ = ["weight_norm_jvp"]


def weight_norm_jvp(v, v_t, g, g_t, kernel_norms):
    """Tangents of (w, norms) for w = g v / ‖v‖, the norm over every dim but one (the dims
    where the kernel's norms output has size 1).

    d‖v‖ = ⟨v, dv⟩ / ‖v‖ and dw = (g / ‖v‖) (dv - v d‖v‖ / ‖v‖) + v dg / ‖v‖. The norms
    output needs its tangent although upstream marks it non-differentiable for reverse
    mode: the double backward (_weight_norm_differentiable_backward) reads it, so
    forward-over-reverse would treat it as a constant. The norm is recomputed from v so
    that second order sees the norm's own derivative.
    """
    norms = _norm_like(v, kernel_norms)
    w_t = norms_t = None
    if v_t is not None:
        norms_t = _sum_like(v * v_t, kernel_norms) / norms
        w_t = (g.reshape(norms.shape) / norms) * (v_t - v * (norms_t / norms))
    if g_t is not None:
        w_t = add_tangents(w_t, v * (g_t.reshape(norms.shape) / norms))
    return w_t, None if norms_t is None else norms_t.to(kernel_norms.dtype)


def _norm_like(v, kernel_norms):
    return _sum_like(v.square(), kernel_norms).sqrt()


def _sum_like(x, kernel_norms):
    """Sum x over the dims where the kernel's norms have size 1, keeping them."""
    dims = [d for d in range(x.dim()) if kernel_norms.shape[d] == 1 and x.shape[d] != 1]
    return x.sum(dims, keepdim=True) if dims else x
