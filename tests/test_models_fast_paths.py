"""End to end: forward mode through the CPU inference fast paths of torch.nn modules.

nn.MultiheadAttention, nn.TransformerEncoderLayer / nn.TransformerEncoder and the float32
nn.LSTM call fused kernels when nothing requires grad: eval mode under no_grad, or
parameters passed detached through functional_call. Every test asserts the fused kernel
ran during the JVP itself (an op list from a TorchDispatchMode), then checks the tangent:
against central differences of the same module in float64, and float32 against float64.
Tangents go on the input and on the parameters, through torch.func.jvp and forward_ad.
The LSTM kernel (mkldnn_rnn_layer) is float32-only, so its float64 reference is the
unfused float64 LSTM, whose forward formulas are PyTorch's own.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import functional_call

import torch_fwdad  # noqa: F401  (installs the forward rules)
from torch_fwdad.testing import plain_pytorch
from torch_fwdad.testing.models import FAST_PATH_KERNELS, FAST_PATH_MODELS, kernels_called

FD_EPS = 1e-6
FLOAT32_TOL = dict(atol=2e-4, rtol=2e-3)


def _build(name, dtype):
    torch.manual_seed(0)
    model, x, kwargs = FAST_PATH_MODELS[name](dtype)
    params = {k: v.detach() for k, v in model.named_parameters()}
    return model, x, kwargs, params


def _call(model, kwargs):
    """f(x, params) -> tuple of outputs (LSTM's (output, (h, c)) flattened)."""
    def f(x, params):
        out = functional_call(model, params, (x,), kwargs)
        return tuple(torch.utils._pytree.tree_leaves(out))
    return f


def _directions(x, params, wrt):
    torch.manual_seed(1)
    dx = torch.randn_like(x) if wrt == "input" else torch.zeros_like(x)
    dparams = {k: torch.randn_like(v) if wrt == "params" else torch.zeros_like(v) for k, v in params.items()}
    return dx, dparams


def _jvp(f, x, params, dx, dparams, via):
    with torch.no_grad():
        if via == "torch.func":
            return torch.func.jvp(f, (x, params), (dx, dparams))[1]
        with fwAD.dual_level():
            duals = {k: fwAD.make_dual(v, dparams[k]) for k, v in params.items()}
            outputs = f(fwAD.make_dual(x, dx), duals)
            return tuple(fwAD.unpack_dual(o).tangent for o in outputs)


def _differences(f, x, params, dx, dparams):
    with torch.no_grad():
        plus = f(x + FD_EPS * dx, {k: v + FD_EPS * dparams[k] for k, v in params.items()})
        minus = f(x - FD_EPS * dx, {k: v - FD_EPS * dparams[k] for k, v in params.items()})
    return tuple((p - m) / (2 * FD_EPS) for p, m in zip(plus, minus))


def _float64_cases():
    return [name for name, kernel in FAST_PATH_KERNELS.items() if kernel != torch.ops.aten.mkldnn_rnn_layer.default]


def _fast_path_jvp(name, dtype, wrt, via):
    """The model's JVP w.r.t. `wrt` through `via`, asserting it reached the fused kernel."""
    model, x, kwargs, params = _build(name, dtype)
    f = _call(model, kwargs)
    dx, dparams = _directions(x, params, wrt)
    seen = kernels_called(_jvp, f, x, params, dx, dparams, via)
    assert FAST_PATH_KERNELS[name] in seen, f"the JVP did not reach {FAST_PATH_KERNELS[name]}"
    tangents = _jvp(f, x, params, dx, dparams, via)
    return f, x, params, dx, dparams, tangents


@pytest.mark.parametrize("via", ["torch.func", "forward_ad"])
@pytest.mark.parametrize("wrt", ["input", "params"])
@pytest.mark.parametrize("name", _float64_cases())
def test_float64_against_finite_differences(name, wrt, via):
    f, x, params, dx, dparams, tangents = _fast_path_jvp(name, torch.float64, wrt, via)
    for got, expected in zip(tangents, _differences(f, x, params, dx, dparams), strict=True):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("via", ["torch.func", "forward_ad"])
@pytest.mark.parametrize("wrt", ["input", "params"])
@pytest.mark.parametrize("name", FAST_PATH_MODELS)
def test_float32_against_float64(name, wrt, via):
    f, x, params, dx, dparams, tangents = _fast_path_jvp(name, torch.float32, wrt, via)
    as64 = lambda t: t.to(torch.float64)  # noqa: E731
    reference = _jvp(f, as64(x), {k: as64(v) for k, v in params.items()}, as64(dx),
                     {k: as64(v) for k, v in dparams.items()}, via)
    for got, expected in zip(tangents, reference, strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.to(torch.float64), expected, **FLOAT32_TOL)


@pytest.mark.parametrize("name", FAST_PATH_MODELS)
def test_primal_unchanged_by_tangents(name):
    """The fast path's own output, bitwise, whether or not tangents ride along."""
    model, x, kwargs, params = _build(name, torch.float32)
    f = _call(model, kwargs)
    dx, dparams = _directions(x, params, "input")
    with torch.no_grad():
        plain = f(x, params)
        primal = torch.func.jvp(f, (x, params), (dx, dparams))[0]
    for ours, theirs in zip(primal, plain, strict=True):
        assert torch.equal(ours, theirs)


def test_lstm_float64_reference_is_unfused():
    """The float64 LSTM reference above does not go through the kernel under test."""
    model, x, kwargs, params = _build("lstm", torch.float64)
    with torch.no_grad():
        assert torch.ops.aten.mkldnn_rnn_layer.default not in kernels_called(model, x)


def test_lstm_float32_train_mode():
    """Training mode with grad enabled also runs mkldnn_rnn_layer on CPU."""
    model, x, kwargs, params = _build("lstm", torch.float32)
    model.train()
    f = _call(model, kwargs)
    dx, dparams = _directions(x, params, "input")
    seen = kernels_called(lambda: torch.func.jvp(f, (x, params), (dx, dparams)))
    assert torch.ops.aten.mkldnn_rnn_layer.default in seen
    got = torch.func.jvp(f, (x, params), (dx, dparams))[1]
    as64 = lambda t: t.to(torch.float64)  # noqa: E731
    expected = torch.func.jvp(f, (as64(x), {k: as64(v) for k, v in params.items()}),
                              (as64(dx), {k: as64(v) for k, v in dparams.items()}))[1]
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.to(torch.float64), e, **FLOAT32_TOL)


def test_nested_tensor_path_under_a_dispatch_mode_is_plain_pytorch():
    # Under a dispatch mode (and while torch.compile traces) the engine looks for tangents
    # without a known level: a nested tensor, which cannot carry one, must pass through.
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=True).eval()
    x, mask = torch.randn(2, 5, 8), torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 3:] = True
    outputs = []

    def run():
        with torch.no_grad():
            outputs.append(encoder(x, src_key_padding_mask=mask))

    seen = kernels_called(run)  # the recording mode is the dispatch mode
    with plain_pytorch():
        run()
    assert torch.ops.aten._nested_tensor_from_mask.default in seen
    assert torch.equal(outputs[0], outputs[1])


def _fused_cases():
    return [name for name, kernel in FAST_PATH_KERNELS.items() if kernel != torch.ops.aten.mkldnn_rnn_layer.default]


@pytest.mark.parametrize("via", ["torch.func", "forward_ad"])
@pytest.mark.parametrize("name", _fused_cases())
def test_fused_kernels_intermediates_are_kept_not_recomputed(name, via, monkeypatch):
    """In eval + no_grad the attention and encoder-layer rules read what the fused kernel
    computed (formulas/fused_recording.py): with recomputation made to fail, the JVP still
    matches finite differences."""
    from torch_fwdad.formulas import transformer

    def recomputing(*args, **kwargs):
        raise AssertionError("the rule recomputed the primal")

    monkeypatch.setattr(transformer, "_recomputed_layer", recomputing)
    monkeypatch.setattr(transformer, "_recomputed_attention", recomputing)
    model, x, kwargs, params = _build(name, torch.float64)
    f = _call(model, kwargs)
    dx, dparams = _directions(x, params, "input")
    dparams = {k: torch.randn_like(v) for k, v in params.items()}  # input and parameters at once
    tangents = _jvp(f, x, params, dx, dparams, via)
    for got, expected in zip(tangents, _differences(f, x, params, dx, dparams), strict=True):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["multihead_attention_weights", "encoder_layer_relu", "encoder_layer_gelu_norm_first"])
def test_forward_over_forward_recomputes_differentiably(name):
    """Under an outer torch.func.jvp the kept intermediates would be constants to it: the
    rule recomputes them with differentiable ops (second derivative against differences)."""
    model, x, kwargs, params = _build(name, torch.float64)
    f = _call(model, kwargs)
    torch.manual_seed(2)
    u, v = torch.randn_like(x), torch.randn_like(x)
    inner = lambda x: torch.func.jvp(lambda x: f(x, params), (x,), (v,))[1]  # noqa: E731
    with torch.no_grad():
        assert FAST_PATH_KERNELS[name] in kernels_called(torch.func.jvp, inner, (x,), (u,))
        second = torch.func.jvp(inner, (x,), (u,))[1]
        differences = [(p - m) / (2 * FD_EPS) for p, m in zip(inner(x + FD_EPS * u), inner(x - FD_EPS * u))]
    for got, expected in zip(second, differences, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
