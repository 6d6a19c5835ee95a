"""Layer and batch norm tangents that an outer derivative can differentiate.

PyTorch's layer_norm_jvp and batch_norm_jvp read the statistics the kernels return
(mean and rstd, save_mean and save_invstd). Their values are right, but PyTorch's
backward drops the gradient of those outputs, so whatever differentiates the tangent
(reverse mode through a JVP, forward-over-forward) loses how it depends on the input
through them. These formulas recompute the statistics from the input with differentiable
ops; derivatives.yaml uses them only under `when: outer_derivative`, elsewhere upstream's
tangent stays. formulas/transformer.py reuses the same pieces for the fused encoder layer.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._common import sum_tangents

__all__ = ["batch_norm_training_jvp", "layer_norm_jvp"]


class Standardized(NamedTuple):
    """x̂ = (x - mean) · rstd over some dims, and rstd = 1/√(var + eps) (biased var)."""

    normed: torch.Tensor
    rstd: torch.Tensor


def standardize(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> Standardized:
    """The statistics native_layer_norm / native_batch_norm return, recomputed with
    differentiable ops (keepdim, so they broadcast against x)."""
    centred = x - x.mean(dims, keepdim=True)
    # the biased variance as a mean (x.var warns about an empty input, the kernels do not)
    rstd = torch.rsqrt((centred * centred).mean(dims, keepdim=True) + eps)
    return Standardized(centred * rstd, rstd)


def standardized_tangent(normed, rstd, x_t, dims: tuple[int, ...], in_place: bool = False) -> torch.Tensor:
    """x̂' = (x' - mean x' - x̂ · mean(x̂ ⊙ x')) · rstd (mean x̂ = 0, mean x̂² = 1).
    `in_place`: the fresh intermediates may be written over (nothing outside saved them)."""
    centred_t = x_t - x_t.mean(dims, keepdim=True)
    along_normed = (normed * x_t).mean(dims, keepdim=True)
    if in_place:
        return centred_t.addcmul_(normed, along_normed, value=-1).mul_(rstd)
    return torch.addcmul(centred_t, normed, along_normed, value=-1) * rstd


def _affine_tangent(standardized: Standardized, x_t, dims, weight, weight_t, bias_t, output):
    """Tangent of x̂ · weight + bias, weight and bias already shaped to broadcast against x."""
    normed_t = None
    if x_t is not None:
        normed_t = standardized_tangent(*standardized, x_t, dims)
        normed_t = normed_t if weight is None else normed_t * weight
    total = sum_tangents(normed_t, None if weight_t is None else standardized.normed * weight_t, bias_t)
    return total if total is None or total.shape == output.shape else total.expand_as(output)


def layer_norm_jvp(input, input_t, weight, weight_t, bias_t, normalized_shape, eps: float, output):
    """Tangent of native_layer_norm's output over the trailing `normalized_shape` dims."""
    dims = tuple(range(-len(normalized_shape), 0))
    return _affine_tangent(standardize(input, dims, eps), input_t, dims, weight, weight_t, bias_t, output)


def batch_norm_training_jvp(input, input_t, weight, weight_t, bias_t, eps: float, output):
    """Tangent of batch norm's output in training mode: statistics per channel (dim 1)
    over the batch and every spatial dim. Running statistics do not enter the output."""
    dims = (0, *range(2, input.dim()))
    per_channel = (-1, *([1] * (input.dim() - 2)))  # (C,) -> (C, 1, ..., 1)
    weight, weight_t, bias_t = (None if t is None else t.reshape(per_channel) for t in (weight, weight_t, bias_t))
    return _affine_tangent(standardize(input, dims, eps), input_t, dims, weight, weight_t, bias_t, output)
