"""Entries whose CPU kernels are float32-only: _grouped_mm and the learnable fake-quantize ops.

The float64 check matrix cannot call them (the _grouped_mm kernel refuses float64; the
fake-quantize backward, which reverse mode runs, is float32-only), so these tests run in
float32 with float32 tolerances, against a loop of mm's and against PyTorch's backward.
"""

import pytest
import torch

import torch_fwdad  # noqa: F401
from torch_fwdad.testing import sample_registry
from torch_fwdad.testing.checks import as_function

F32 = torch.float32
GROUPED_MM = torch.ops.aten._grouped_mm.default
# float32 sums of at most 12 products: relative error well below 1e-5
TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=F32, generator=torch.Generator().manual_seed(seed))


def _samples(name):
    for index, sample in enumerate(sample_registry()[name].generate(F32, "cpu")):
        yield pytest.param(sample, id=f"{index}-{sample.desc}".replace(" ", "_"))


# ------------------------------------------------------------------ _grouped_mm


def grouped_mm_reference(a, b, offs=None):
    """The grouped product as a loop of mm's: groups of a's rows, of K, or of b's columns."""
    if offs is None:
        return torch.bmm(a, b)
    bounds = list(zip([0] + offs[:-1].tolist(), offs.tolist()))
    if a.dim() == 2 and b.dim() == 3:
        return torch.cat([a[s:e] @ b[g] for g, (s, e) in enumerate(bounds)])
    if a.dim() == 2 and b.dim() == 2:
        return torch.stack([a[:, s:e] @ b[s:e] for s, e in bounds])
    return torch.cat([a[g] @ b[:, s:e] for g, (s, e) in enumerate(bounds)], dim=1)


def _grouped_mm_functions(sample):
    offs = sample.args[2] if len(sample.args) > 2 else None
    return (lambda a, b: GROUPED_MM(a, b, offs)), (lambda a, b: grouped_mm_reference(a, b, offs))


@pytest.mark.parametrize("sample", list(_samples("aten::_grouped_mm")))
def test_grouped_mm_jvp_matches_mm_loop(sample):
    op, reference = _grouped_mm_functions(sample)
    a, b = sample.args[:2]
    ta, tb = randn(*a.shape, seed=1), randn(*b.shape, seed=2)
    # both inputs carrying tangents, then each alone (partial duals)
    cases = [(lambda fn: fn, (a, b), (ta, tb)),
             (lambda fn: (lambda x: fn(x, b)), (a,), (ta,)),
             (lambda fn: (lambda y: fn(a, y)), (b,), (tb,))]
    for bind, primals, tangents in cases:
        out, got = torch.func.jvp(bind(op), primals, tangents)
        _, expected = torch.func.jvp(bind(reference), primals, tangents)
        assert torch.equal(out, op(a, b)), "primal changed under forward AD"
        torch.testing.assert_close(got, expected, **TOLERANCE)


@pytest.mark.parametrize("sample", list(_samples("aten::_grouped_mm")))
def test_grouped_mm_jvp_vjp_against_pytorch_backward(sample):
    op, _ = _grouped_mm_functions(sample)
    a, b = (x.detach().requires_grad_() for x in sample.args[:2])
    ta, tb = randn(*a.shape, seed=1), randn(*b.shape, seed=2)
    _, jvp = torch.func.jvp(op, (a.detach(), b.detach()), (ta, tb))
    u = randn(*jvp.shape, seed=3)
    ga, gb = torch.autograd.grad(op(a, b), (a, b), u)
    torch.testing.assert_close((u * jvp).sum(), (ga * ta).sum() + (gb * tb).sum(), **TOLERANCE)


def test_grouped_mm_forward_over_forward():
    sample = next(sample_registry()["aten::_grouped_mm"].generate(F32, "cpu"))
    op, reference = _grouped_mm_functions(sample)
    a, b = sample.args[:2]
    inner = (randn(*a.shape, seed=1), randn(*b.shape, seed=2))
    outer = (randn(*a.shape, seed=3), randn(*b.shape, seed=4))

    def tangent_of(fn):
        return lambda a, b: torch.func.jvp(fn, (a, b), inner)[1]
    got = torch.func.jvp(tangent_of(op), (a, b), outer)[1]
    expected = torch.func.jvp(tangent_of(reference), (a, b), outer)[1]
    torch.testing.assert_close(got, expected, **TOLERANCE)


# ------------------------------------------------------------------ learnable fake quantize

LEARNABLE = ["aten::_fake_quantize_learnable_per_tensor_affine", "aten::_fake_quantize_learnable_per_channel_affine"]


def _learnable_params():
    for name in LEARNABLE:
        for param in _samples(name):
            yield pytest.param(name, *param.values, id=f"{name.split('_affine')[0].split('learnable_')[1]}-{param.id}")


@pytest.mark.parametrize("name, sample", list(_learnable_params()))
def test_learnable_fake_quantize_jacobian_is_pytorchs_backward(name, sample):
    """Every column of the forward Jacobian (x, scale, zero_point) equals the one PyTorch's
    backward kernel gives (reverse mode, float32 only): the same per-element partials."""
    op = getattr(torch.ops.aten, name.split("::")[1]).default
    fn, inputs = as_function(op, sample)
    forward = torch.func.jacfwd(lambda *xs: fn(*xs)[0], argnums=(0, 1, 2))(*inputs)
    reverse = torch.autograd.functional.jacobian(lambda *xs: fn(*xs)[0], tuple(inputs))
    for got, expected in zip(forward, reverse):
        torch.testing.assert_close(got, expected)
    # inputs carrying tangents alone give their own column (partial duals)
    for position, x in enumerate(inputs):
        t = randn(*x.shape, seed=position)

        def alone(y, position=position):
            args = list(inputs)
            args[position] = y
            return fn(*args)[0]
        out, got = torch.func.jvp(alone, (x,), (t,))
        assert torch.equal(out, fn(*inputs)[0]), "primal changed under forward AD"
        torch.testing.assert_close(got, torch.tensordot(reverse[position], t, dims=t.dim()))
