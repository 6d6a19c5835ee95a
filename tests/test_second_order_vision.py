"""Second order (forward-over-reverse) through F.grid_sample and F.embedding_bag.

torch.func.hessian is jacfwd over jacrev: forward mode through the reverse pass, so
through grid_sampler_{2,3}d_backward and the embedding-bag backward ops, whose forward
formulas derivatives.yaml adds. Each Hessian (and one Hessian-vector product at a time,
without vmap) must match central differences of the reverse-mode gradient; for
grid_sample also PyTorch's reverse-over-reverse Hessian (its double backward).
The backward op must really be reached.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_fwdad.testing.second_order import OpsSeen, fd_hessian, hvp_columns, split

DT = torch.float64


def _fixed(*shape, seed, low=-1.0, high=1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, dtype=DT, generator=generator) * (high - low) + low


def _check(f, theta, backward_ops, reverse_over_reverse=False, symmetric=True):
    with OpsSeen() as seen:
        torch.func.grad(f)(theta)
    for op in backward_ops:
        assert op in seen.names, f"the reverse pass does not call {op}; it calls {sorted(seen.names)}"
    expected = fd_hessian(f, theta)
    hessian = torch.func.hessian(f)(theta)
    torch.testing.assert_close(hessian, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(hvp_columns(f, theta), expected, atol=1e-5, rtol=1e-4)
    if symmetric:
        torch.testing.assert_close(hessian, hessian.T, atol=1e-8, rtol=1e-8)
    if reverse_over_reverse:  # PyTorch's own double backward of the sampler
        torch.testing.assert_close(hessian, torch.autograd.functional.hessian(f, theta), atol=1e-8, rtol=1e-8)


# ---------------------------------------------------------------- grid_sample

GRID_CASES = [  # (mode, padding_mode, align_corners, input shape, grid shape)
    ("bilinear", "zeros", False, (1, 2, 3, 4), (1, 2, 2, 2)),
    ("bilinear", "zeros", True, (2, 1, 3, 3), (2, 2, 1, 2)),
    ("bilinear", "border", False, (1, 2, 3, 4), (1, 2, 2, 2)),
    ("bilinear", "border", True, (1, 1, 4, 3), (1, 3, 1, 2)),
    ("bilinear", "reflection", False, (1, 1, 3, 3), (1, 2, 2, 2)),
    ("bicubic", "zeros", False, (1, 1, 4, 4), (1, 2, 1, 2)),
    ("bilinear", "zeros", False, (1, 1, 2, 3, 2), (1, 2, 1, 2, 3)),
    ("bilinear", "border", True, (1, 2, 2, 2, 2), (1, 1, 2, 1, 3)),
]


@pytest.mark.parametrize("mode, padding, align, input_shape, grid_shape", GRID_CASES,
                         ids=[f"{len(c[3]) - 2}d-{c[0]}-{c[1]}-align{int(c[2])}" for c in GRID_CASES])
def test_grid_sample_hessian(mode, padding, align, input_shape, grid_shape):
    weights = _fixed(*input_shape[:2], *grid_shape[1:-1], seed=3)

    def f(theta):
        x, grid = split(theta, input_shape, grid_shape)
        out = F.grid_sample(torch.tanh(x), grid, mode=mode, padding_mode=padding, align_corners=align)
        return (weights * out + 0.5 * out * out).sum()

    size = torch.Size(input_shape).numel() + torch.Size(grid_shape).numel()
    theta = torch.cat([_fixed(torch.Size(input_shape).numel(), seed=1),
                       _fixed(torch.Size(grid_shape).numel(), seed=2, low=-1.2, high=1.2)])
    assert theta.numel() == size
    op = "grid_sampler_2d_backward" if len(input_shape) == 4 else "grid_sampler_3d_backward"
    _check(f, theta, [op], reverse_over_reverse=True)


def test_grid_sample_hessian_in_grid_only():
    # only the grid differentiable: grid_sampler_2d_backward runs with output_mask [False, True]
    x = _fixed(1, 2, 3, 4, seed=4)

    def f(grid):
        return (F.grid_sample(x, grid.reshape(1, 2, 2, 2), align_corners=False) ** 2).sum()

    _check(f, _fixed(8, seed=5, low=-1.2, high=1.2), ["grid_sampler_2d_backward"], reverse_over_reverse=True)


def test_spatial_transformer_hessian_in_theta():
    # affine_grid + grid_sample, as in a spatial transformer: Hessian in the affine parameters
    x = _fixed(1, 2, 4, 5, seed=6)

    def f(theta):
        grid = F.affine_grid(theta.reshape(1, 2, 3), (1, 2, 3, 3), align_corners=False)
        return (F.grid_sample(x, grid, padding_mode="border", align_corners=False) ** 2).sum()

    theta = torch.tensor([0.9, 0.1, 0.05, -0.2, 1.1, -0.1], dtype=DT)
    _check(f, theta, ["grid_sampler_2d_backward"], reverse_over_reverse=True)


def test_cpu_fallback_backward_tangents_match_grid_sampler_2d_backward():
    # _grid_sampler_2d_cpu_fallback_backward takes float32 only: compare its tangents with
    # grid_sampler_2d_backward's (checked in float64 by the check matrix)
    from torch_fwdad.testing.samples.vision import grid_sampler_2d_backward_samples

    for sample in grid_sampler_2d_backward_samples(torch.float32, "cpu"):
        if sample.wrapper is not None or sample.args[-1] != [True, True]:
            continue
        grad_output, x, grid, *flags, mask = sample.args
        tangents = tuple(torch.randn_like(t) for t in (grad_output, x, grid))

        def call(op, *args):
            return op(*args, *flags, *([mask] if op is torch.ops.aten.grid_sampler_2d_backward else []))

        for op in (torch.ops.aten._grid_sampler_2d_cpu_fallback_backward, torch.ops.aten.grid_sampler_2d_backward):
            primal, tangent = torch.func.jvp(lambda *a: call(op, *a), (grad_output, x, grid), tangents)
            if op is torch.ops.aten.grid_sampler_2d_backward:
                torch.testing.assert_close(tangent, fallback, atol=1e-4, rtol=1e-4, msg=sample.desc)
            fallback = tangent


# ---------------------------------------------------------------- embedding_bag

INDICES = torch.tensor([1, 2, 2, 4, 0, 3, 1])
OFFSETS = torch.tensor([0, 2, 2, 5])  # bags [1 2] [] [2 4 0] [3 1]
BAG_WEIGHTS = _fixed(4, 3, seed=7)


def _bag_loss(mode, with_psw, padding_idx=None, scale_grad_by_freq=False):
    def f(theta):
        if with_psw:
            weight, psw = split(theta, (5, 3), (7,))
        else:
            (weight,), psw = split(theta, (5, 3)), None
        out = F.embedding_bag(INDICES, torch.sin(weight), OFFSETS, mode=mode, per_sample_weights=psw,
                              padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
        return (BAG_WEIGHTS * out + out * out).sum()
    return f


BAG_CASES = [  # (mode, per_sample_weights, padding_idx, scale_grad_by_freq, backward ops reached)
    ("sum", True, None, False, ["_embedding_bag_backward", "_embedding_bag_per_sample_weights_backward"]),
    ("sum", True, 4, False, ["_embedding_bag_backward", "_embedding_bag_per_sample_weights_backward"]),
    ("sum", False, None, True, ["_embedding_bag_backward"]),
    ("mean", False, None, False, ["_embedding_bag_backward"]),
    ("mean", False, 2, False, ["_embedding_bag_backward"]),
    ("max", False, None, False, ["_embedding_bag_backward"]),
]


@pytest.mark.parametrize("mode, with_psw, padding_idx, freq, ops", BAG_CASES,
                         ids=[f"{c[0]}{'-psw' if c[1] else ''}{f'-pad{c[2]}' if c[2] is not None else ''}"
                              f"{'-freq' if c[3] else ''}" for c in BAG_CASES])
def test_embedding_bag_hessian(mode, with_psw, padding_idx, freq, ops):
    f = _bag_loss(mode, with_psw, padding_idx, freq)
    theta = _fixed(15 + (7 if with_psw else 0), seed=8, low=-1.5, high=1.5)
    # scale_grad_by_freq rescales the gradient (not the gradient of any loss), so its
    # Jacobian, which finite differences also see, is not symmetric
    _check(f, theta, ops, symmetric=not freq)


def test_embedding_bag_module_hessian_in_per_sample_weights():
    bag = torch.nn.EmbeddingBag(6, 3, mode="sum", dtype=DT)
    torch.nn.init.normal_(bag.weight, generator=torch.Generator().manual_seed(9))
    indices, offsets = torch.tensor([0, 5, 5, 2, 1]), torch.tensor([0, 3])

    def f(psw):
        return (torch.tanh(bag(indices, offsets, per_sample_weights=psw)) ** 2).sum()

    _check(f, _fixed(5, seed=10), ["_embedding_bag_per_sample_weights_backward"])
