"""Samples for kernels that exist for CUDA only (fused dropout, fused RNN cells, depthwise
convolutions). tests/test_formulas.py cannot run them here; tests/test_cuda_only_kernels.py
calls each generated rule on CPU tensors with the outputs of an unfused CPU reference and
compares with torch.func.jvp of that reference.
"""

from functools import partial

from torch.testing import make_tensor

from . import Sample, samples_for


@samples_for("aten::_fused_dropout", cpu_runnable=False)
def fused_dropout_samples(dtype, device):
    # p is the probability of keeping
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(4, 5), 0.7), desc="2-d", diff=(0,))
    yield Sample((make_arg(2, 3, 4, noncontiguous=True), 0.5), desc="non-contiguous", diff=(0,))


def _cell_args(batch, hidden, gates, dtype, device, bias=True):
    """(input_gates, hidden_gates, state, input_bias, hidden_bias): the products x w_ihᵀ, h w_hhᵀ."""
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    biases = (make_arg(gates * hidden), make_arg(gates * hidden))
    return (make_arg(batch, gates * hidden),
            make_arg(batch, gates * hidden),
            make_arg(batch, hidden),
            *(biases if bias else (None, None)))


@samples_for("aten::_thnn_fused_lstm_cell", cpu_runnable=False)
def fused_lstm_cell_samples(dtype, device):
    yield Sample(_cell_args(3, 4, 4, dtype, device), desc="biases")
    yield Sample(_cell_args(2, 3, 4, dtype, device, bias=False), desc="no biases")


@samples_for("aten::_thnn_fused_gru_cell", cpu_runnable=False)
def fused_gru_cell_samples(dtype, device):
    yield Sample(_cell_args(3, 4, 3, dtype, device), desc="biases")
    yield Sample(_cell_args(2, 3, 3, dtype, device, bias=False), desc="no biases")


def _depthwise_samples(dtype, device, dims):
    """(input, weight, kernel_size, bias, stride, padding, dilation); weight (C * multiplier, 1, k...)."""
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    kernel, ones, zeros = (2,) * dims, (1,) * dims, (0,) * dims
    x = make_arg(2, 3, *(5,) * dims)
    yield Sample((x, make_arg(3, 1, *kernel), kernel, make_arg(3),
                  ones, zeros, ones), desc="multiplier 1, bias")
    yield Sample((x, make_arg(6, 1, *kernel), kernel, None, (2,) * dims, ones, (2,) * dims),
                 desc="multiplier 2, strided, padded, dilated, no bias")


@samples_for("aten::_conv_depthwise2d", cpu_runnable=False)
def conv_depthwise2d_samples(dtype, device):
    yield from _depthwise_samples(dtype, device, 2)


@samples_for("aten::conv_depthwise3d", cpu_runnable=False)
def conv_depthwise3d_samples(dtype, device):
    yield from _depthwise_samples(dtype, device, 3)
