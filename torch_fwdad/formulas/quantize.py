"""Fake quantisation (quantisation-aware training): straight-through estimator, learnable qparams."""

from __future__ import annotations

import torch

from ._common import add_tangents

__all__ = ["straight_through_jvp", "learnable_fake_quantize_jvp"]


def straight_through_jvp(self_t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The tangent passes where the value was not clamped, as in the backward formulas.

    Rounding is treated as the identity (the straight-through estimator), so the tangent
    is deliberately not the derivative of the piecewise-constant primal.
    """
    return self_t * mask


def learnable_fake_quantize_jvp(self, self_t, scale, scale_t, zero_point, zero_point_t,
                                quant_min, quant_max, grad_factor, axis=None):
    """Tangent of _fake_quantize_learnable_per_{tensor,channel}_affine (axis None: per tensor).

    Mirrors the per-element partials of PyTorch's backward kernels
    (_fake_quantize_learnable_*_affine_backward, which sums them over the elements):
    x passes where its quantised value is inside [quant_min, quant_max]; scale gets
    (x_fq - x) / scale inside, quant_min - z below, quant_max - z above; zero_point gets
    -scale outside, 0 inside; the scale and zero_point parts are multiplied by grad_factor.
    """
    scale, zero_point, scale_t, zero_point_t = _per_element_qparams(
        self, scale, zero_point, scale_t, zero_point_t, quant_min, quant_max, axis)
    inv_scale = 1.0 / scale
    x_q = torch.round(self * inv_scale) + zero_point
    below, above = x_q < quant_min, x_q > quant_max
    inside = ~(below | above)
    tangent = None
    if self_t is not None:
        tangent = self_t * inside
    if scale_t is not None:
        x_fq = (x_q.clamp(quant_min, quant_max) - zero_point) * scale
        d_scale = torch.where(below, quant_min - zero_point,
                              torch.where(above, quant_max - zero_point, (x_fq - self) * inv_scale))
        tangent = add_tangents(tangent, d_scale * scale_t * grad_factor)
    if zero_point_t is not None:
        tangent = add_tangents(tangent, torch.where(inside, 0.0, -scale) * zero_point_t * grad_factor)
    return tangent


def _per_element_qparams(self, scale, zero_point, scale_t, zero_point_t, quant_min, quant_max, axis):
    """scale, the backward's integer zero point and their tangents, shaped to broadcast over self."""
    if axis is None:
        def reshape(t):  # the kernels read scale[0] and zero_point[0]
            return t.reshape(-1)[0]
        # the backward reads int(clamp(z + 0.5)) (_get_zero_point_from_tensor, is_forward=false):
        # truncation, not the forward's round-half-even; they differ at halves and for negative z
        zero_point = torch.clamp(reshape(zero_point) + 0.5, quant_min, quant_max).trunc()
    else:
        shape = [1] * self.dim()
        shape[axis] = -1

        def reshape(t):
            return t.reshape(shape)
        zero_point = reshape(zero_point.round().clamp(quant_min, quant_max))
    return (reshape(scale), zero_point,
            None if scale_t is None else reshape(scale_t),
            None if zero_point_t is None else reshape(zero_point_t))
