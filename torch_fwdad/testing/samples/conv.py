"""Samples for the convolution kernels CPU dispatches to directly (small: gradcheck is quadratic)."""

import torch

from . import ErrorSample, Sample, make, samples_for


def _conv_samples(dtype, device, dims, transposed=False, dilated=False, defaults=True):
    """(input, weight, kernel_size, bias, stride, padding[, output_padding][, dilation])"""
    spatial = (4,) * dims
    kernel = (2,) * dims
    ones, zeros = (1,) * dims, (0,) * dims
    weight_shape = (2, 3, *kernel) if transposed else (3, 2, *kernel)  # 2 in, 3 out channels
    cases = [
        (ones, zeros, ones, "plain", True, False),
        ((2,) * dims, ones, (2,) * dims if dilated else ones, "strided, padded" + (", dilated" if dilated else ""), False, True),
    ]
    for stride, padding, dilation, desc, with_bias, noncontiguous in cases:
        x = make(2, 2, *spatial, dtype=dtype, device=device, noncontiguous=noncontiguous)
        w = make(*weight_shape, dtype=dtype, device=device)
        bias = make(3, dtype=dtype, device=device) if with_bias else None
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
    x = make(5, 2, 3, dtype=dtype, device=device)  # time, batch, channels
    w = make(3, 3, 4, dtype=dtype, device=device)  # kernel width, in, out
    yield Sample((x, w, make(4, dtype=dtype, device=device), 0), desc="no padding")
    # (conv_tbc itself refuses non-contiguous input)
    yield Sample((x, w.transpose(0, 1).contiguous().transpose(0, 1), make(4, dtype=dtype, device=device), 1),
                 desc="padded, non-contiguous weight")


def _conv_tbc_errors(device):
    x = torch.randn(5, 2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((x, torch.randn(3, 2, 4, dtype=torch.float64, device=device), torch.randn(4, dtype=torch.float64, device=device)),
                      desc="channel mismatch")


@samples_for("aten::_slow_conv2d_backward.output_mask")
def slow_conv2d_backward_samples(dtype, device):
    x = make(2, 2, 4, 4, dtype=dtype, device=device)
    w = make(3, 2, 2, 2, dtype=dtype, device=device)
    for stride, padding, mask, desc in (((1, 1), (0, 0), [True, True, True], "all outputs"),
                                        ((2, 2), (1, 1), [True, True, False], "strided, padded, no grad_bias"),
                                        ((1, 1), (1, 1), [False, True, True], "no grad_input")):
        out_size = [(4 + 2 * p - 2) // s + 1 for s, p in zip(stride, padding)]
        grad_output = make(2, 3, *out_size, dtype=dtype, device=device)
        yield Sample((grad_output, x, w, (2, 2), stride, padding, mask), desc=desc, wrapper=_requested_outputs)


def _requested_outputs(op, *args):
    # outputs left out by output_mask are None, which the checks (gradcheck) cannot take
    return tuple(out for out in op(*args) if out is not None)
