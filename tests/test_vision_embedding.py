"""Grid sampling and embedding bags end to end: F.grid_sample in a spatial transformer,
F.embedding_bag and nn.EmbeddingBag, against finite differences and reverse mode."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_fwdad  # noqa: F401
from torch_fwdad.testing import sample_registry
from torch_fwdad.testing.checks import as_function
from torch_fwdad.testing.samples.vision import grid_at_kinks

F64 = torch.float64


def randn(*shape, dtype=F64, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def central_difference(fn, primals, tangents, eps=1e-6):
    plus = fn(*(p + eps * t for p, t in zip(primals, tangents)))
    minus = fn(*(p - eps * t for p, t in zip(primals, tangents)))
    return (plus - minus) / (2 * eps)


# ------------------------------------------------------------------ spatial transformer


class SpatialTransformer(nn.Module):
    def __init__(self, channels=2, size=6, mode="bilinear", padding_mode="zeros", align_corners=False):
        super().__init__()
        self.localise = nn.Linear(channels * size * size, 6, dtype=F64)
        self.options = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)

    def forward(self, x):
        identity = torch.tensor([1.0, 0, 0, 0, 1, 0], dtype=x.dtype)
        theta = (identity + 0.3 * self.localise(x.flatten(1))).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=self.options["align_corners"])
        return F.grid_sample(x, grid, **self.options)


@pytest.mark.parametrize("mode, padding_mode, align_corners", [
    ("bilinear", "zeros", False), ("bicubic", "reflection", True), ("bilinear", "border", True),
])
def test_spatial_transformer_jvp_matches_finite_differences(mode, padding_mode, align_corners):
    torch.manual_seed(0)
    model = SpatialTransformer(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    x, t = randn(2, 2, 6, 6, seed=1), randn(2, 2, 6, 6, seed=2)
    _, tangent = torch.func.jvp(model, (x,), (t,))
    torch.testing.assert_close(tangent, central_difference(model, (x,), (t,)), atol=1e-6, rtol=1e-5)


def test_spatial_transformer_jacfwd_matches_jacrev_float32():
    torch.manual_seed(0)
    model = SpatialTransformer(size=4).float()
    x = randn(1, 2, 4, 4, dtype=torch.float32, seed=1)
    torch.testing.assert_close(torch.func.jacfwd(model)(x), torch.func.jacrev(model)(x), atol=1e-5, rtol=1e-4)


def test_spatial_transformer_hessian_vector_product():
    # reverse-over-forward: the grid tangent is built from differentiable ops
    torch.manual_seed(0)
    model = SpatialTransformer(size=4)
    x, v = randn(1, 2, 4, 4, seed=1), randn(1, 2, 4, 4, seed=2)

    def loss(x):
        return model(x).square().sum()

    def directional(x):
        return torch.func.jvp(loss, (x,), (v,))[1]

    hvp = torch.func.grad(directional)(x)
    grad = torch.func.grad(loss)
    torch.testing.assert_close(hvp, central_difference(grad, (x,), (v,)), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample_3d_both_inputs(mode):
    x, grid = randn(1, 2, 3, 4, 3, seed=1), randn(1, 2, 2, 3, 3, seed=2).clamp(-1.2, 1.2)
    tx, tg = randn(*x.shape, seed=3), randn(*grid.shape, seed=4)

    def fn(x, grid):
        return F.grid_sample(x, grid, mode=mode, padding_mode="reflection", align_corners=False)

    _, tangent = torch.func.jvp(fn, (x, grid), (tx, tg))
    torch.testing.assert_close(tangent, central_difference(fn, (x, grid), (tx, tg)), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dims, mode", [(2, 0), (2, 2), (3, 0)], ids=["2-d bilinear", "2-d bicubic", "3-d bilinear"])
@pytest.mark.parametrize("padding_mode", [0, 1, 2], ids=["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_tangent_from_the_backward_kernel_matches_the_differentiable_one(monkeypatch, dims, mode, padding_mode,
                                                                              align_corners):
    # without an outer derivative the grid tangent comes from PyTorch's backward kernel,
    # one channel per image, in chunks of channels; with one, from differentiable ops
    from torch_fwdad.formulas import vision

    x = randn(2, 5, *(4,) * dims, seed=1)
    grid, grid_t = randn(2, *(3,) * dims, dims, seed=2).clamp(-1.3, 1.3), randn(2, *(3,) * dims, dims, seed=3)
    calls = []
    by_backward = vision._grid_tangent_by_backward
    monkeypatch.setattr(vision, "_grid_tangent_by_backward", lambda *a: calls.append(1) or by_backward(*a))
    monkeypatch.setattr(vision, "GRID_COPY_ELEMENTS", 2 * 3 ** dims * dims)  # two channels a chunk
    fast = vision.grid_sampler_grid_jvp(x, grid, grid_t, mode, padding_mode, align_corners)
    assert calls, "the values-only path should be taken without an outer derivative"
    differentiable = vision.grid_sampler_grid_jvp(x, grid.requires_grad_(), grid_t, mode, padding_mode, align_corners)
    assert len(calls) == 1 and differentiable.requires_grad
    torch.testing.assert_close(fast, differentiable.detach())


@pytest.mark.parametrize("dims, mode", [(2, 0), (2, 2), (3, 0)], ids=["2-d bilinear", "2-d bicubic", "3-d bilinear"])
@pytest.mark.parametrize("padding_mode", [0, 1, 2], ids=["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("spatial", [(4, 5, 3), (1, 3, 1)], ids=["4x5x3", "1x3x1"])
def test_tap_gather_matches_the_backward_kernel_at_tap_boundaries_and_limits(dims, mode, padding_mode, align_corners,
                                                                           spatial):
    # the differentiable path gathers taps with the nearest sampler at integer coordinates:
    # where a coordinate sits on a tap, a limit or outside, PyTorch's backward (the values
    # path) decides which taps count; both must agree there, and on inputs of size 1
    from torch_fwdad.formulas import vision

    spatial = spatial[:dims]
    x = randn(2, 3, *spatial, seed=1)
    points = 12
    grid = grid_at_kinks(spatial, 2 * points, dims, align_corners).reshape(2, points, *(1,) * (dims - 1), dims)
    grid_t = randn(*grid.shape, seed=2)
    by_backward = vision._grid_tangent_by_backward(x, grid, grid_t, mode, padding_mode, align_corners)
    gathered = vision.grid_sampler_grid_jvp(x, grid.requires_grad_(), grid_t, mode, padding_mode, align_corners)
    assert gathered.requires_grad
    torch.testing.assert_close(gathered.detach(), by_backward, rtol=1e-12, atol=1e-12)


def test_nearest_has_zero_grid_tangent_like_the_backward():
    x, grid = randn(1, 1, 4, 4, seed=1), randn(1, 3, 3, 2, seed=2)
    fn = (lambda grid: F.grid_sample(x, grid, mode="nearest", align_corners=True))
    _, tangent = torch.func.jvp(fn, (grid,), (randn(*grid.shape, seed=3),))
    assert not tangent.any()
    grid = grid.clone().requires_grad_()
    (grad,) = torch.autograd.grad(fn(grid).sum(), grid)
    assert not grad.any()


def test_cpu_fallback_matches_grid_sampler_2d_float32():
    fallback = torch.ops.aten._grid_sampler_2d_cpu_fallback.default
    reference = torch.ops.aten.grid_sampler_2d.default
    for sample in sample_registry()["aten::_grid_sampler_2d_cpu_fallback"].generate(torch.float32, "cpu"):
        fn, inputs = as_function(fallback, sample)
        reference_fn, _ = as_function(reference, sample)
        tangents = [randn(*x.shape, dtype=torch.float32, seed=i) for i, x in enumerate(inputs)]
        got = torch.func.jvp(fn, tuple(inputs), tuple(tangents))[1]
        expected = torch.func.jvp(reference_fn, tuple(inputs), tuple(tangents))[1]
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4, msg=lambda m: f"{sample.desc}: {m}")


# ------------------------------------------------------------------ embedding bags


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_functional(mode):
    weight = randn(6, 3, seed=1)
    indices = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9 % 6])
    offsets = torch.tensor([0, 3, 3, 6])
    psw = randn(8, seed=2) if mode == "sum" else None

    def fn(weight, psw=psw):
        return F.embedding_bag(indices, weight, offsets, mode=mode, per_sample_weights=psw, padding_idx=4)

    primals, tangents = (weight,), (randn(6, 3, seed=3),)
    if psw is not None:
        primals, tangents = (weight, psw), (randn(6, 3, seed=3), randn(8, seed=4))
    _, tangent = torch.func.jvp(fn, primals, tangents)
    torch.testing.assert_close(tangent, central_difference(fn, primals, tangents), atol=1e-7, rtol=1e-6)


def test_forward_only_kernel_agrees_with_embedding_bag():
    for name in ("aten::_embedding_bag_forward_only",):
        for sample in sample_registry()[name].generate(F64, "cpu"):
            fn, inputs = as_function(torch.ops.aten._embedding_bag_forward_only.default, sample)
            reference_fn, _ = as_function(torch.ops.aten._embedding_bag.default, sample)
            tangents = tuple(randn(*x.shape, seed=i) for i, x in enumerate(inputs))
            got = torch.func.jvp(fn, tuple(inputs), tangents)[1][0]
            expected = torch.func.jvp(reference_fn, tuple(inputs), tangents)[1][0]
            torch.testing.assert_close(got, expected, msg=lambda m: f"{sample.desc}: {m}")


class BagModel(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.bags = nn.EmbeddingBag(10, 4, mode="mean", dtype=dtype)
        self.head = nn.Linear(4, 2, dtype=dtype)

    def forward(self, indices, offsets):
        return self.head(torch.tanh(self.bags(indices, offsets)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_embedding_bag_model_jacfwd_matches_jacrev(dtype):
    torch.manual_seed(0)
    model = BagModel(dtype)
    indices, offsets = torch.tensor([1, 3, 3, 7, 0, 9]), torch.tensor([0, 2, 2, 5])
    params = dict(model.named_parameters())

    def fn(params):
        return torch.func.functional_call(model, params, (indices, offsets))

    forward, reverse = torch.func.jacfwd(fn)(params), torch.func.jacrev(fn)(params)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else {}
    for name in params:
        torch.testing.assert_close(forward[name], reverse[name], **tol)


def test_per_sample_weights_jvp_with_a_weight_that_requires_grad():
    """nn.EmbeddingBag's weight requires grad; torch.func lifts it into a wrapper that does
    not, so F.embedding_bag picks _embedding_bag_forward_only, whose upstream autograd kernel
    refused the unwrapped parameter ("Autograd not support dtype: Long")."""
    torch.manual_seed(0)
    bag = nn.EmbeddingBag(6, 3, mode="sum", dtype=F64)
    assert bag.weight.requires_grad
    indices, offsets = torch.tensor([0, 2, 4, 5, 1]), torch.tensor([0, 2])

    def fn(scores):
        return bag(indices, offsets, per_sample_weights=scores)

    scores, direction = randn(5, seed=1), randn(5, seed=2)
    _, tangent = torch.func.jvp(fn, (scores,), (direction,))
    with torch.no_grad():
        torch.testing.assert_close(tangent, central_difference(fn, (scores,), (direction,)))
    reverse = torch.func.vjp(fn, scores)[1]  # the reverse gradient is untouched
    u = randn(2, 3, seed=3)
    torch.testing.assert_close((tangent * u).sum(), (reverse(u)[0] * direction).sum())


@pytest.mark.parametrize("per_sample", [False, True], ids=["plain", "per_sample_weights"])
def test_float32_sum_bag_hessian_vector_product(per_sample):
    """float32 sum bags leave offset2bag empty and bag_size zero: the backward's tangent
    rebuilds the bags from the offsets. Reference: the float64 HVP, checked against differences."""
    indices, offsets = torch.tensor([0, 2, 4, 5, 1, 3]), torch.tensor([0, 2, 2, 5])

    def hvp(dtype):
        weight, psw = randn(6, 3, seed=1).to(dtype), randn(6, seed=2).to(dtype)

        def loss(weight):
            out = F.embedding_bag(indices, weight, offsets, mode="sum", per_sample_weights=psw if per_sample else None)
            return (out.sin() ** 2).sum()

        direction = randn(6, 3, seed=3).to(dtype)
        grad = torch.func.grad(loss)
        got = torch.func.jvp(grad, (weight,), (direction,))[1]
        return got, central_difference(grad, (weight,), (direction,))

    got32, _ = hvp(torch.float32)
    got64, differences64 = hvp(F64)
    torch.testing.assert_close(got64, differences64, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(got32.double(), got64, atol=1e-5, rtol=1e-4)


def test_max_bag_with_decreasing_offsets_follows_reverse_mode():
    """offsets [0, 3, 1]: bag 1 has bag_size -2, yet the kernel picks a row for it and
    reverse mode differentiates it; the JVP (and the backward's tangent) follow."""
    indices, offsets = torch.tensor([0, 2, 4, 5, 1]), torch.tensor([0, 3, 1])
    weight, direction = randn(6, 3, seed=1), randn(6, 3, seed=2)

    def fn(weight):
        return F.embedding_bag(indices, weight, offsets, mode="max")

    _, tangent = torch.func.jvp(fn, (weight,), (direction,))
    assert tangent[1].abs().sum() > 0
    torch.testing.assert_close(tangent, central_difference(fn, (weight,), (direction,)))
    torch.testing.assert_close(tangent, (torch.func.jacrev(fn)(weight) * direction).sum((-2, -1)))
    loss = lambda w: (fn(w) ** 3).sum()  # noqa: E731
    hvp = torch.func.jvp(torch.func.grad(loss), (weight,), (direction,))[1]
    torch.testing.assert_close(hvp, central_difference(torch.func.grad(loss), (weight,), (direction,)),
                               atol=1e-6, rtol=1e-5)
