"""mkldnn_rnn_layer, the float32 CPU LSTM kernel (float64 LSTMs never reach it).

The float64 check matrix cannot call it, so its samples run here in float32: the JVP
against PyTorch's own backward (<J t, u> = <t, Jᵀ u>), primal and gradients bitwise
unchanged, every subset of inputs carrying tangents; and the rule itself, evaluated in
float64, against central differences of an independent float64 LSTM (nn.LSTM's unfused
path through torch.func.functional_call).
"""

import pytest
import torch
from torch import nn

import torch_fwdad  # noqa: F401
from torch_fwdad.testing import CHECKS, sample_registry
from torch_fwdad.testing.checks import as_function

OP = torch.ops.aten.mkldnn_rnn_layer.default
ENTRY = "aten::mkldnn_rnn_layer"


def _samples():
    for index, sample in enumerate(sample_registry()[ENTRY].generate(torch.float32, "cpu")):
        yield pytest.param(sample, id=f"{index}-{sample.desc}".replace(" ", "_"))


@pytest.mark.parametrize("check", ["jvp_vjp", "unchanged", "partial"])
@pytest.mark.parametrize("sample", _samples())
def test_float32_check_matrix(sample, check):
    CHECKS[check](OP, sample)


def _reference_lstm(sample):
    """(inputs) -> (output, hy, cy) of a float64 nn.LSTM with the sample's weights."""
    x, w_ih, w_hh, b_ih, b_hh, hx, cx, reverse, _, _, hidden, _, has_biases = sample.args[:13]
    lstm = nn.LSTM(x.shape[-1], hidden, bias=has_biases).double()
    names = ["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if has_biases else [])

    def run(x, w_ih, w_hh, b_ih, b_hh, hx, cx):
        params = dict(zip(names, (w_ih, w_hh, b_ih, b_hh)))
        seq = x.flip(0) if reverse else x
        out, (h, c) = torch.func.functional_call(lstm, params, (seq, (hx[None], cx[None])))
        return (out.flip(0) if reverse else out), h[0], c[0]

    return run


@pytest.mark.parametrize("sample", _samples())
def test_rule_in_float64_against_finite_differences(sample):
    from torch_fwdad.formulas import mkldnn_lstm_layer_jvp

    tensors = [a.double() for a in sample.args[:7]]
    reverse, batch_sizes, mode, _, _, has_biases = sample.args[7:13]
    generator = torch.Generator().manual_seed(0)
    tangents = [torch.randn(t.shape, dtype=torch.float64, generator=generator) for t in tensors]
    if not has_biases:
        tangents[3], tangents[4] = torch.zeros_like(tangents[3]), torch.zeros_like(tangents[4])
    reference = _reference_lstm(sample)
    output = reference(*tensors)[0]
    got = mkldnn_lstm_layer_jvp(*tensors, *tangents, reverse, batch_sizes, mode, has_biases, output)
    eps = 1e-6
    plus = reference(*[t + eps * d for t, d in zip(tensors, tangents)])
    minus = reference(*[t - eps * d for t, d in zip(tensors, tangents)])
    for g, p, m in zip(got, plus, minus, strict=True):
        torch.testing.assert_close(g, (p - m) / (2 * eps), atol=1e-6, rtol=1e-5)


def test_reference_lstm_matches_the_kernel():
    """The float64 reference above is the kernel's function (compared in float32)."""
    for param in _samples():
        sample = param.values[0]
        fn, inputs = as_function(OP, sample)
        kernel = fn(*inputs)[:3]
        x, w_ih, w_hh, b_ih, b_hh, hx, cx = [a.double() for a in sample.args[:7]]
        reference = _reference_lstm(sample)(x, w_ih, w_hh, b_ih, b_hh, hx, cx)
        for k, r in zip(kernel, reference, strict=True):
            torch.testing.assert_close(k.double(), r, atol=1e-5, rtol=1e-4)
