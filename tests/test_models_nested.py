"""End to end: nn.TransformerEncoder's nested-tensor path under forward_ad.

In eval mode with src_key_padding_mask and nothing requiring grad, nn.TransformerEncoder
packs the batch into a nested tensor (_nested_tensor_from_mask), runs each layer's fused
kernel on it and pads the result with zeros (to_padded_tensor). PyTorch cannot make a
nested tensor dual; torch_fwdad keeps its tangent beside it (engine/nested.py). Every test
asserts the nested path ran during the JVP itself, then checks the tangent against central
differences of the same module in float64, and float32 against float64, with tangents on
the input and on the parameters. torch.func transforms cannot wrap a nested tensor, in
plain PyTorch too: there the error names forward_ad.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import functional_call

import torch_fwdad
from torch_fwdad.engine import nested as nested_engine
from torch_fwdad.testing.models import kernels_called
from torch_fwdad.testing import plain_pytorch

FD_EPS = 1e-6
FLOAT32_TOL = dict(atol=2e-4, rtol=2e-3)
NESTED_PATH = (torch.ops.aten._nested_tensor_from_mask.default, torch.ops.aten._transformer_encoder_layer_fwd.default,
               torch.ops.aten.to_padded_tensor.default)


def _padding_mask(kind):
    mask = torch.zeros(3, 6, dtype=torch.bool)
    if kind == "left_aligned":
        mask[0, 4:] = True
        mask[2, 1:] = True
    elif kind == "one_sequence_empty":
        mask[1, 2:] = True
        mask[2, :] = True
    else:  # not left aligned, accepted with mask_check=False: each sequence keeps its first len_i tokens
        mask[0, :2] = True
        mask[1, 3] = True
    return mask


ENCODERS = {
    "relu_final_norm": dict(activation="relu", norm=True, mask="left_aligned", mask_check=True),
    "gelu": dict(activation="gelu", norm=False, mask="left_aligned", mask_check=True),
    "empty_sequence": dict(activation="relu", norm=False, mask="one_sequence_empty", mask_check=True),
    "mask_check_off": dict(activation="gelu", norm=True, mask="not_left_aligned", mask_check=False),
}


def _build(name, dtype):
    spec = ENCODERS[name]
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, activation=spec["activation"], batch_first=True)
    norm = torch.nn.LayerNorm(8) if spec["norm"] else None
    encoder = torch.nn.TransformerEncoder(layer, 2, norm=norm, mask_check=spec["mask_check"]).to(dtype).eval()
    with torch.no_grad():  # biases and norm affines away from their zero/one init, so every tangent matters
        for p in encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    params = {k: v.detach() for k, v in encoder.named_parameters()}
    mask = _padding_mask(spec["mask"])
    x = torch.randn(3, 6, 8, dtype=dtype)

    def f(x, params):
        return functional_call(encoder, params, (x,), {"src_key_padding_mask": mask})
    return f, x, params


def _directions(x, params, wrt):
    torch.manual_seed(1)
    dx = torch.randn_like(x) if wrt == "input" else torch.zeros_like(x)
    dparams = {k: torch.randn_like(v) if wrt == "params" else torch.zeros_like(v) for k, v in params.items()}
    return dx, dparams


def _jvp(f, x, params, dx, dparams):
    with torch.no_grad(), fwAD.dual_level():
        out = f(fwAD.make_dual(x, dx), {k: fwAD.make_dual(v, dparams[k]) for k, v in params.items()})
        primal, tangent = fwAD.unpack_dual(out)
        return primal, tangent


def _differences(f, x, params, dx, dparams):
    with torch.no_grad():
        plus = f(x + FD_EPS * dx, {k: v + FD_EPS * dparams[k] for k, v in params.items()})
        minus = f(x - FD_EPS * dx, {k: v - FD_EPS * dparams[k] for k, v in params.items()})
    return (plus - minus) / (2 * FD_EPS)


def _assert_nested_path(f, x, params, dx, dparams):
    seen = kernels_called(_jvp, f, x, params, dx, dparams)
    missing = [op for op in NESTED_PATH if op not in seen]
    assert not missing, f"the JVP did not take the nested path: {missing} not called"


@pytest.mark.parametrize("wrt", ["input", "params"])
@pytest.mark.parametrize("name", ENCODERS)
def test_float64_against_finite_differences(name, wrt):
    f, x, params = _build(name, torch.float64)
    dx, dparams = _directions(x, params, wrt)
    _assert_nested_path(f, x, params, dx, dparams)
    _, tangent = _jvp(f, x, params, dx, dparams)
    torch.testing.assert_close(tangent, _differences(f, x, params, dx, dparams), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("wrt", ["input", "params"])
@pytest.mark.parametrize("name", ENCODERS)
def test_float32_against_float64(name, wrt):
    f, x, params = _build(name, torch.float32)
    dx, dparams = _directions(x, params, wrt)
    _assert_nested_path(f, x, params, dx, dparams)
    _, tangent = _jvp(f, x, params, dx, dparams)
    as64 = lambda t: t.to(torch.float64)  # noqa: E731
    f64, _, _ = _build(name, torch.float64)
    _, reference = _jvp(f64, as64(x), {k: as64(v) for k, v in params.items()}, as64(dx),
                        {k: as64(v) for k, v in dparams.items()})
    assert tangent.dtype == torch.float32
    torch.testing.assert_close(tangent.to(torch.float64), reference, **FLOAT32_TOL)


@pytest.mark.parametrize("name", ENCODERS)
def test_primal_bitwise_plain_pytorch(name):
    """The nested path's own output, zeros at the padding included, with tangents riding along."""
    f, x, params = _build(name, torch.float32)
    dx, dparams = _directions(x, params, "input")
    primal, _ = _jvp(f, x, params, dx, dparams)
    with plain_pytorch():
        with torch.no_grad():
            plain = f(x, params)
    assert torch.equal(primal, plain)


def test_padding_rows_have_zero_tangent():
    """Without a final norm the nested path writes zeros past each sequence: their tangent is zero."""
    f, x, params = _build("gelu", torch.float64)
    dx, dparams = _directions(x, params, "input")
    dparams = {k: torch.randn_like(v) for k, v in params.items()}
    _, tangent = _jvp(f, x, params, dx, dparams)
    padding = _padding_mask("left_aligned")
    assert torch.equal(tangent[padding], torch.zeros_like(tangent[padding]))
    assert tangent[~padding].abs().min() > 0


def test_kept_tangent_ends_with_its_level():
    """A nested tensor's tangent kept inside a dual level is gone in the next one, and so is
    the guard against dropped tangents."""
    nested = torch.nested.nested_tensor([torch.randn(2, 4), torch.randn(3, 4)])
    tangent = torch.randn(nested_engine.padded_shape(nested))
    with fwAD.dual_level() as level:
        nested_engine.keep_nested_tangent("test", "out", nested, tangent, level)
        assert torch.equal(nested_engine.nested_tangent(nested, level), tangent)
        with pytest.raises(RuntimeError, match="reached a forward-mode rule without its tangent"):
            nested_engine.nested_tangent(torch.nested.nested_tensor([torch.randn(1, 4)]), level)
    with fwAD.dual_level() as level:
        assert nested_engine.nested_tangent(nested, level) is None


def test_nested_tensor_from_mask_outside_the_encoder_is_refused():
    """Called directly on a dual tensor, any op but the encoder's would drop the kept tangent:
    refused, naming the op and what works instead."""
    t, mask = torch.randn(2, 3, 4), torch.tensor([[True, True, False], [True, False, False]])
    with fwAD.dual_level():
        dual = fwAD.make_dual(t, torch.ones_like(t))
        with pytest.raises(NotImplementedError, match="_nested_tensor_from_mask.*nn.TransformerEncoder's path"):
            torch._nested_tensor_from_mask(dual, mask)
        # without a tangent it is plain PyTorch's
        plain = torch._nested_tensor_from_mask(t, mask)
        assert torch.equal(plain.to_padded_tensor(0.0), torch._nested_tensor_from_mask(t, mask).to_padded_tensor(0.0))


def test_a_layer_leaving_the_fused_path_is_refused_not_dropped():
    """A layer with a forward hook leaves the fused kernel and runs the unfused ops on the
    nested tensor, which plain PyTorch allows: the tangent cannot follow them, so forward
    mode refuses with an error naming the op rather than dropping it."""
    f, x, params = _build("relu_final_norm", torch.float64)
    encoder = f.__closure__[0].cell_contents
    hook = encoder.layers[1].register_forward_hook(lambda module, args, out: None)
    dx, _ = _directions(x, params, "input")
    with torch.no_grad():
        f(x, params)  # plain forward: fine
        with fwAD.dual_level():
            with pytest.raises(NotImplementedError, match="_native_multi_head_attention on a nested tensor"):
                f(fwAD.make_dual(x, dx), params)
            hook.remove()  # the same level goes on: nothing of the refused call is left live
            tangent = fwAD.unpack_dual(f(fwAD.make_dual(x, dx), params)).tangent
    torch.testing.assert_close(tangent, _differences(f, x, params, dx, {k: torch.zeros_like(v) for k, v in params.items()}),
                               atol=1e-6, rtol=1e-5)


def test_torch_func_error_names_forward_ad():
    """torch.func cannot wrap a nested tensor, in plain PyTorch too: the error says what works."""
    f, x, params = _build("gelu", torch.float32)
    dx, dparams = _directions(x, params, "params")
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="_nested_tensor_from_mask.*torch.autograd.forward_ad"):
            torch.func.jvp(lambda x: f(x, params), (x,), (dx,))
        with pytest.raises(RuntimeError, match="_nested_tensor_from_mask.*torch.autograd.forward_ad"):
            torch.func.jvp(lambda p: f(x, p), (params,), (dparams,))
        torch_fwdad.disable()
        try:  # plain PyTorch fails here too
            with pytest.raises(RuntimeError):
                torch.func.jvp(lambda p: f(x, p), (params,), (dparams,))
        finally:
            torch_fwdad.enable()
