"""Rules of CUDA-only kernels (fused dropout, fused LSTM/GRU cells, depthwise convolutions).

No kernel runs here, so each generated rule is called on CPU tensors with the outputs of
an unfused CPU reference and compared with torch.func.jvp of that reference, for every
input alone and all together. The cell references are pinned to PyTorch's own CPU cells
and to its differentiable backward of the fused cells.
"""

import pytest
import torch
import torch.nn.functional as F

import torch_fwdad  # noqa: F401
from torch_fwdad._generated import jvp_rules
from torch_fwdad.testing import sample_registry
from torch_fwdad.testing.checks import diff_positions

F64 = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


def lstm_reference(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    gates = input_gates + hidden_gates
    if input_bias is not None:
        gates = gates + input_bias + hidden_bias
    i, f, g, o = gates.chunk(4, 1)
    cy = f.sigmoid() * cx + i.sigmoid() * g.tanh()
    return o.sigmoid() * cy.tanh(), cy


def gru_reference(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    if input_bias is not None:
        input_gates, hidden_gates = input_gates + input_bias, hidden_gates + hidden_bias
    i_r, i_z, i_n = input_gates.chunk(3, 1)
    h_r, h_z, h_n = hidden_gates.chunk(3, 1)
    r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return ((1 - z) * n + z * hx,)


def _depthwise_reference(conv):
    def reference(x, weight, kernel_size, bias, stride, padding, dilation):
        return (conv(x, weight, bias, stride, padding, dilation, groups=x.shape[1]),)
    return reference


def _dropout_case(args):
    """The kernel draws its mask; the reference takes one drawn here (uint8, as CUDA's)."""
    x, p = args
    mask = torch.bernoulli(torch.full(x.shape, p, dtype=F64), generator=torch.Generator().manual_seed(3)).to(torch.uint8)
    return (lambda x, p: (x * mask / p,)), (lambda outs: (outs[0], mask))


# name -> (reference for the sample's args, outputs handed to the rule from the reference's)
CASES = {
    "aten::_fused_dropout": _dropout_case,
    "aten::_thnn_fused_lstm_cell": lambda args: (lstm_reference, lambda outs: (*outs, None)),
    "aten::_thnn_fused_gru_cell": lambda args: (gru_reference, lambda outs: (outs[0], None)),
    "aten::_conv_depthwise2d": lambda args: (_depthwise_reference(F.conv2d), lambda outs: outs[0]),
    "aten::conv_depthwise3d": lambda args: (_depthwise_reference(F.conv3d), lambda outs: outs[0]),
}


def _rule(name):
    return getattr(jvp_rules, f"jvp_{name.split('::')[1]}")


def _schema_length(name):
    return len(getattr(torch.ops.aten, name.split("::")[1]).default._schema.arguments)


def _params():
    registry = sample_registry()
    for name in CASES:
        for index, sample in enumerate(registry[name].generate(F64, "cpu")):
            positions = [i for i, _ in diff_positions(sample)]
            for subset in [positions] + [[i] for i in positions]:
                which = "all" if len(subset) > 1 else f"arg{subset[0]}"
                yield pytest.param(name, sample, subset, id=f"{name.split('::')[1]}-{index}-{sample.desc}-{which}".replace(" ", "_"))


def _rule_against_reference(name, sample, subset, primals=None):
    args = list(sample.args) if primals is None else primals
    reference, rule_outputs = CASES[name](tuple(sample.args))
    tangents = {i: randn(*args[i].shape, seed=10 + i) for i in subset}

    def partial_reference(*xs):
        full = list(args)
        for i, x in zip(subset, xs):
            full[i] = x
        return reference(*full)

    outs, expected = torch.func.jvp(partial_reference, tuple(args[i] for i in subset), tuple(tangents[i] for i in subset))
    length = _schema_length(name)
    rule_primals = tuple(args) + (None,) * (length - len(args))
    rule_tangents = tuple(tangents.get(i) for i in range(length))
    got = _rule(name)(rule_primals, rule_tangents, rule_outputs(outs))
    return (got if isinstance(got, tuple) else (got,)), expected


@pytest.mark.parametrize("name, sample, subset", list(_params()))
def test_rule_matches_reference_jvp(name, sample, subset):
    got, expected = _rule_against_reference(name, sample, subset)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    assert all(g is None for g in got[len(expected):]), "outputs without a tangent upstream got one"


@pytest.mark.parametrize("name", ["aten::_thnn_fused_lstm_cell", "aten::_thnn_fused_gru_cell"])
def test_cell_rules_are_differentiable(name):
    """Forward-over-forward: the rule under torch.func.jvp against the reference's second JVP."""
    sample = next(sample_registry()[name].generate(F64, "cpu"))
    reference, rule_outputs = CASES[name](sample.args)
    args, length = sample.args, _schema_length(name)
    inner = tuple(randn(*a.shape, seed=20 + i) for i, a in enumerate(args))
    outer = tuple(randn(*a.shape, seed=40 + i) for i, a in enumerate(args))

    def rule_tangent(*primals):
        tangents = inner + (None,) * (length - len(inner))
        got = _rule(name)(primals, tangents, rule_outputs(reference(*primals)))
        return tuple(g for g in got if g is not None) if isinstance(got, tuple) else got

    def reference_tangent(*primals):
        return torch.func.jvp(reference, primals, inner)[1]

    got = torch.func.jvp(rule_tangent, args, outer)[1]
    expected = torch.func.jvp(reference_tangent, args, outer)[1]
    torch.testing.assert_close(got, expected)


# ------------------------------------------------------------ the references are PyTorch's cells


def _cell_weights(gates, hidden=3, features=2, batch=2):
    x, h, c = randn(batch, features, seed=1), randn(batch, hidden, seed=2), randn(batch, hidden, seed=3)
    w_ih, w_hh = randn(gates * hidden, features, seed=4), randn(gates * hidden, hidden, seed=5)
    b_ih, b_hh = randn(gates * hidden, seed=6), randn(gates * hidden, seed=7)
    return x, h, c, w_ih, w_hh, b_ih, b_hh


def test_lstm_reference_is_pytorchs_cell_and_backward():
    x, h, c, w_ih, w_hh, b_ih, b_hh = _cell_weights(4)
    args = (x @ w_ih.T, h @ w_hh.T, c, b_ih, b_hh)
    hy, cy = lstm_reference(*args)
    torch.testing.assert_close((hy, cy), torch._VF.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh))
    grad_hy, grad_cy = randn(*hy.shape, seed=8), randn(*cy.shape, seed=9)
    _, vjp = torch.func.vjp(lstm_reference, *args)
    # PyTorch's backward of the fused cell when grad mode is on (double backward)
    upstream = torch.ops.aten._thnn_differentiable_lstm_cell_backward(grad_hy, grad_cy, args[0], args[1], b_ih, b_hh, c, cy)
    torch.testing.assert_close(vjp((grad_hy, grad_cy)), upstream)


def test_gru_reference_is_pytorchs_cell_and_backward():
    x, h, _, w_ih, w_hh, b_ih, b_hh = _cell_weights(3)
    args = (x @ w_ih.T, h @ w_hh.T, h, b_ih, b_hh)
    (hy,) = gru_reference(*args)
    torch.testing.assert_close(hy, torch._VF.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh))
    grad_hy = randn(*hy.shape, seed=8)
    _, vjp = torch.func.vjp(gru_reference, *args)
    upstream = torch.ops.aten._thnn_differentiable_gru_cell_backward(grad_hy, args[0], args[1], h, b_ih, b_hh)
    torch.testing.assert_close(vjp((grad_hy,)), upstream)


def test_fused_dropout_tangent_matches_its_backward():
    """_fused_dropout_backward is grad * mask / p (keep probability p): the JVP is the same map."""
    x, p = randn(3, 4), 0.6
    mask = (randn(3, 4, seed=1) > 0).to(torch.uint8)
    t = randn(3, 4, seed=2)
    (got, mask_tangent) = _rule("aten::_fused_dropout")((x, p, None), (t, None, None), (x * mask / p, mask))
    torch.testing.assert_close(got, torch.ops.aten.native_dropout_backward(t, mask.bool(), 1 / p))
    assert mask_tangent is None
