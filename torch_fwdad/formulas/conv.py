"""Convolution kernels that CPU dispatches to directly: bilinear in (input, weight)."""

from __future__ import annotations

import torch

__all__ = ["channel_bias_jvp", "conv_tbc_linear", "depthwise_conv_linear", "slow_conv2d_backward_jvp"]


def channel_bias_jvp(bias_t: torch.Tensor, result: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """Tangent of a per-channel bias that is added at every position of the output."""
    shape = [1] * result.dim()
    shape[channel_dim] = -1
    return bias_t.reshape(shape).expand_as(result)


def conv_tbc_linear(input: torch.Tensor, weight: torch.Tensor, pad: int) -> torch.Tensor:
    """conv_tbc without its (mandatory) bias: the part linear in input and in weight."""
    return torch.ops.aten.conv_tbc(input, weight, weight.new_zeros(weight.shape[-1]), pad)


def depthwise_conv_linear(input: torch.Tensor, weight: torch.Tensor, kernel_size, stride, padding,
                          dilation) -> torch.Tensor:
    """_conv_depthwise2d / conv_depthwise3d without bias: a convolution with one group per channel.

    Those kernels exist for CUDA only; aten.convolution computes the same product on any
    device, so the rule also runs (and is tested) on CPU.
    """
    weight = weight.reshape(weight.shape[0], 1, *kernel_size)
    return torch.ops.aten.convolution(input, weight, None, stride, padding, dilation, False,
                                      [0] * len(stride), input.shape[1])


def slow_conv2d_backward_jvp(primals, tangents, kernel_size, stride, padding, output_mask):
    """Tangents of (grad_input, grad_weight, grad_bias) of the CPU 2-d convolution.

    primals, tangents: (grad_output, self, weight), tangents None where zero.

    Each is linear in grad_output and in the other tensor it pairs with (grad_input in
    weight, grad_weight in self; grad_bias in grad_output only), so every term is the
    kernel itself with one argument replaced by its tangent, asking only for the outputs
    that term reaches.
    """
    def backward(go, x, w, mask):
        if not any(mask):
            return (None, None, None)
        return torch.ops.aten._slow_conv2d_backward(go, x, w, kernel_size, stride, padding, mask)

    grad_output, self, weight = primals
    grad_output_t, self_t, weight_t = tangents
    input_mask, weight_mask, bias_mask = output_mask
    terms = [
        backward(grad_output_t, self, weight, output_mask) if grad_output_t is not None else (None, None, None),
        backward(grad_output, self_t, weight, [False, weight_mask, False]) if self_t is not None else (None, None, None),
        backward(grad_output, self, weight_t, [input_mask, False, False]) if weight_t is not None else (None, None, None),
    ]
    return tuple(_sum_defined(parts) if mask else None for parts, mask in zip(zip(*terms), output_mask))


def _sum_defined(parts):
    defined = [p for p in parts if p is not None]
    return sum(defined[1:], defined[0]) if defined else None
