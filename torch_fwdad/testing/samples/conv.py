"""Samples for the convolution kernels CPU dispatches to directly (small: gradcheck is quadratic)."""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for


def _conv_samples(dtype, device, dims, transposed=False, dilated=False, defaults=True):
    """(input, weight, kernel_size, bias, stride, padding[, output_padding][, dilation])"""
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    spatial = (4,) * dims
    kernel = (2,) * dims
    ones, zeros = (1,) * dims, (0,) * dims
    weight_shape = (2, 3, *kernel) if transposed else (3, 2, *kernel)  # 2 in, 3 out channels
    cases = [
        (ones, zeros, ones, "plain", True, False),
        ((2,) * dims, ones, (2,) * dims if dilated else ones, "strided, padded" + (", dilated" if dilated else ""), False, True),
    ]
    for stride, padding, dilation, desc, with_bias, noncontiguous in cases:
        x = make_arg(2, 2, *spatial, noncontiguous=noncontiguous)
        w = make_arg(*weight_shape)
        bias = make_arg(3) if with_bias else None
        args = [x, w, kernel, bias, stride, padding]
        if transposed:
            args += [(1,) * dims if stride != ones else zeros, dilation]
            desc += ", output_padding" if stride != ones else ""
        elif dilated:
            args += [dilation]
        yield Sample(tuple(args), desc=desc + (", bias" if with_bias else ", no bias"))


@samples_for("aten::slow_conv_transpose2d", errors=lambda device: _conv_errors(device, torch.ops.aten.slow_conv_transpose2d))
def slow_conv_transpose2d_samples(dtype, device):
    yield from _conv_samples(dtype, device, 2, transposed=True)


@samples_for("aten::slow_conv_transpose3d")
def slow_conv_transpose3d_samples(dtype, device):
    yield from _conv_samples(dtype, device, 3, transposed=True)


@samples_for("aten::_slow_conv2d_forward", errors=lambda device: _conv_errors(device, torch.ops.aten._slow_conv2d_forward))
def slow_conv2d_samples(dtype, device):
    yield from _conv_samples(dtype, device, 2)


@samples_for("aten::slow_conv3d_forward")
def slow_conv3d_samples(dtype, device):
    yield from _conv_samples(dtype, device, 3)


@samples_for("aten::slow_conv_dilated2d")
def slow_conv_dilated2d_samples(dtype, device):
    yield from _conv_samples(dtype, device, 2, dilated=True)


@samples_for("aten::slow_conv_dilated3d")
def slow_conv_dilated3d_samples(dtype, device):
    yield from _conv_samples(dtype, device, 3, dilated=True)


def _conv_errors(device, op):
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, device=device)
    w = torch.randn(3, 5, 2, 2, dtype=torch.float64, device=device)
    yield ErrorSample((x, w, (2, 2), None, (1, 1), (0, 0)), desc="channel mismatch")


@samples_for("aten::conv_tbc", errors=lambda device: _conv_tbc_errors(device))
def conv_tbc_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    x = make_arg(5, 2, 3)  # time, batch, channels
    w = make_arg(3, 3, 4)  # kernel width, in, out
    yield Sample((x, w, make_arg(4), 0), desc="no padding")
    # (conv_tbc itself refuses non-contiguous input)
    yield Sample((x, w.transpose(0, 1).contiguous().transpose(0, 1), make_arg(4), 1),
                 desc="padded, non-contiguous weight")


def _conv_tbc_errors(device):
    x = torch.randn(5, 2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((x, torch.randn(3, 2, 4, dtype=torch.float64, device=device), torch.randn(4, dtype=torch.float64, device=device)),
                      desc="channel mismatch")


@samples_for("aten::_slow_conv2d_backward.output_mask")
def slow_conv2d_backward_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    x = make_arg(2, 2, 4, 4)
    w = make_arg(3, 2, 2, 2)
    for stride, padding, mask, desc in (((1, 1), (0, 0), [True, True, True], "all outputs"),
                                        ((2, 2), (1, 1), [True, True, False], "strided, padded, no grad_bias"),
                                        ((1, 1), (1, 1), [False, True, True], "no grad_input")):
        out_size = [(4 + 2 * p - 2) // s + 1 for s, p in zip(stride, padding)]
        grad_output = make_arg(2, 3, *out_size)
        yield Sample((grad_output, x, w, (2, 2), stride, padding, mask), desc=desc, wrapper=_requested_outputs)


def _requested_outputs(op, *args):
    # outputs left out by output_mask are None, which the checks (gradcheck) cannot take
    return tuple(out for out in op(*args) if out is not None)
