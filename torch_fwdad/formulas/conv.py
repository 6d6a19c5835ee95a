"""Convolution kernels that CPU dispatches to directly: bilinear in (input, weight)."""

from __future__ import annotations

import torch

__all__ = ["channel_bias_jvp", "conv_tbc_linear"]


def channel_bias_jvp(bias_t: torch.Tensor, result: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """Tangent of a per-channel bias that is added at every position of the output."""
    shape = [1] * result.dim()
    shape[channel_dim] = -1
    return bias_t.reshape(shape).expand_as(result)


def conv_tbc_linear(input: torch.Tensor, weight: torch.Tensor, pad: int) -> torch.Tensor:
    """conv_tbc without its (mandatory) bias: the part linear in input and in weight."""
    return torch.ops.aten.conv_tbc(input, weight, weight.new_zeros(weight.shape[-1]), pad)
