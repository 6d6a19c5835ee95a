"""Grid sampling (grid_sampler_2d/3d): tangents for the input and for the grid.

The sampler is linear in its input, so the input term is the sampler applied to the
input's tangent. The grid term is Σ_d (∂out/∂x_d)(∂x_d/∂g_d) ġ_d, with x_d the source
coordinate along spatial dimension d. ∂out/∂x_d is the same interpolation with the
weights along d replaced by their derivatives; ∂x_d/∂g_d is the unnormalisation slope
times the padding's slope, with PyTorch's backward conventions (0 where a coordinate is
clipped, a sign flip per reflection). Nearest sampling is piecewise constant in the grid:
PyTorch's backward gives the grid a zero gradient, and so does this tangent.

Where nothing outside can differentiate the tangent (values only: plain CPU tensors, no
autograd, no torch.func transform around, no dispatch mode), the kernels run on the plain
tensors, and with a grid term the optional C++ kernel (grid_sample_tangent) computes both
terms in one pass over the sampled points; everywhere else the terms are built from
differentiable torch ops.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import torch

from . import grid_sample_tangent
from ._common import outer_derivative_possible, outer_transforms_around, plain_values, sum_tangents, unwrapped

__all__ = ["grid_sampler_backward_jvp", "grid_sampler_jvp"]

BILINEAR, NEAREST, BICUBIC = 0, 1, 2
ZEROS, BORDER, REFLECTION = 0, 1, 2
CUBIC_A = -0.75  # PyTorch's cubic convolution coefficient

# Elements of the per-channel copy of the grid the backward kernel reads at once (16 MB in
# float32); channels are taken in chunks below it.
GRID_COPY_ELEMENTS = 1 << 22


def grid_sampler_jvp(op, input, input_t, grid, grid_t, interpolation_mode, padding_mode, align_corners):
    """Tangent of grid_sampler_{2,3}d (None: zero); input_t or grid_t may be None.

    op: the entry's own overload (grid_sampler_2d, grid_sampler_3d or _grid_sampler_2d_cpu_fallback).
    """
    if interpolation_mode == NEAREST:  # the grid term is zero, as PyTorch's backward for the grid
        grid_t = None
    if input_t is None and grid_t is None:
        return None
    plain = _plain_if_values_only(input, input_t, grid, grid_t)
    if plain is not None:
        # nothing can differentiate the tangent: the kernels run on the plain tensors, without
        # a pass through torch.func's layers (and this rule's override) for every op
        input, input_t, grid, grid_t = plain
        if _fused_kernel_runs(input, input_t, grid, grid_t):  # nearest: grid_t is None
            return grid_sample_tangent.output_tangent(input, grid, input_t, grid_t, interpolation_mode, padding_mode,
                                                      align_corners)
    return sum_tangents(
        None if input_t is None else grid_sampler_input_jvp(op, input_t, grid, interpolation_mode, padding_mode,
                                                            align_corners),
        None if grid_t is None else grid_sampler_grid_jvp(input, grid, grid_t, interpolation_mode, padding_mode,
                                                          align_corners))


def _plain_if_values_only(*tensors):
    """The tensors unwrapped from torch.func's wrappers when they are plain CPU tensors that
    nothing (autograd, an outer torch.func transform, a dispatch mode, the compiler) can
    differentiate or trace through this rule (outer_derivative_possible, plain_values); else None."""
    if outer_transforms_around() or any(t is not None and t.requires_grad for t in tensors):
        return None
    plain = tuple(map(unwrapped, tensors))
    return plain if plain_values(*plain) else None


def _fused_kernel_runs(input, input_t, grid, grid_t) -> bool:
    """True when the C++ kernel computes the (values-only) tangent: there is a grid term (a
    grid tangent, not nearest), and the tensors share a dtype the kernel computes in.

    Measured on the bench's shapes (benchmarks/bench_grid_sample.py), in primals: the fused
    pass costs 2.2-3.5 in 2-D and 1.3-1.8 in 3-D against 2.8-6.8 and 4.4-5.7 for the Python
    path's sampler + backward kernel + contraction. Without a grid term the tangent is one
    sampler call on the input's tangent, which PyTorch's (vectorized in 2-D) kernel does at
    least as fast.
    """
    if grid_t is None or not grid_sample_tangent.extension.active:
        return False
    return ({t.dtype for t in (input, input_t, grid, grid_t) if t is not None} == {input.dtype}
            and input.dtype in grid_sample_tangent.DTYPES)


def grid_sampler_input_jvp(op, input_t, grid, interpolation_mode, padding_mode, align_corners):
    """Tangent of grid_sampler_{2,3}d with respect to the input: the sampler `op` applied to input_t.

    op: the entry's own overload (grid_sampler_2d, grid_sampler_3d or _grid_sampler_2d_cpu_fallback).
    """
    input_t, grid = _batch_dims_in_front(input_t, grid)
    return op(input_t, grid, interpolation_mode, padding_mode, align_corners)


def _batch_dims_in_front(*tensors):
    """The tensors, copied with every vmap batch dimension in front when a transform is outside.

    torch 2.13's batching rule for the grid samplers (and their backward kernels) splits
    the output by the wrong size when input and grid are batched at different dimensions
    (`input.sizes()[grid_bdim]`): a wrong result or an internal assert. Inside a rule that
    happens whenever tangents and primals come batched differently, e.g. vmap over jvp.
    clone in contiguous format is the one op whose batching rule moves the batch dimension
    to the front, so every argument ends up batched at dimension 0. Plain jvp: no copies.
    """
    if not outer_transforms_around():
        return tensors
    return tuple(t if t is None else t.clone(memory_format=torch.contiguous_format) for t in tensors)


def grid_sampler_grid_jvp(input, grid, grid_t, interpolation_mode, padding_mode, align_corners):
    """Tangent of grid_sampler_{2,3}d with respect to the grid (None, zero, for nearest)."""
    if interpolation_mode == NEAREST:  # zero, as PyTorch's backward for the grid
        return None
    if not outer_derivative_possible(input, grid, grid_t):
        return _grid_tangent_by_backward(input, grid, grid_t, interpolation_mode, padding_mode, align_corners)
    sources, slopes, weights = _source_coordinates(input, grid, interpolation_mode, padding_mode, align_corners)
    source_rates = [slope * grid_t[..., d] for d, slope in enumerate(slopes)]  # ẋ_d
    return _interpolate(_Taps(input, sources, weights, padding_mode, align_corners), source_rates)


def _grid_tangent_by_backward(input, grid, grid_t, interpolation_mode, padding_mode, align_corners):
    """The grid tangent from PyTorch's own backward kernel, one channel per image.

    The kernel's grad_grid sums ∂out/∂grid over channels; with each channel as an image
    of its own and grad_output = 1 it returns ∂out_c/∂grid for every channel, which the
    tangent contracts with ġ. Values only (the kernel has no derivative of its own), so
    used when no outer derivative can see the rule: 2-4x faster than gathering each tap.
    """
    N, C, *spatial = input.shape
    points = grid.shape[1:-1]
    if N * C == 0:
        return input.new_zeros(N, C, *points)
    backward = torch.ops.aten.grid_sampler_2d_backward if len(spatial) == 2 else torch.ops.aten.grid_sampler_3d_backward
    chunk = max(1, GRID_COPY_ELEMENTS // max(1, grid.shape[1:].numel()))
    tangents = []
    for first in range(0, C, chunk):
        channels = min(chunk, C - first)
        images = input.narrow(1, first, channels).reshape(N * channels, 1, *spatial)
        grids = grid.unsqueeze(1).expand(N, channels, *grid.shape[1:]).reshape(N * channels, *grid.shape[1:])
        ones = input.new_ones(()).expand(N * channels, 1, *points)
        slopes = backward(ones, images, grids, interpolation_mode, padding_mode, align_corners, [False, True])[1]
        tangents.append(_contract_last(slopes.view(N, channels, *grid.shape[1:]), grid_t.unsqueeze(1)))
    return torch.cat(tangents, 1) if len(tangents) > 1 else tangents[0]


def _contract_last(a, b):
    """Σ_d a[..., d] b[..., d] as a multiply-add per d: a reduction over a last dim of 2 or 3
    costs about 3x more."""
    total = a[..., 0] * b[..., 0]
    for d in range(1, a.shape[-1]):
        total = torch.addcmul(total, a[..., d], b[..., d])
    return total


class GridSamplerBackwardInputs(NamedTuple):
    """The tensor inputs of grid_sampler_{2,3}d_backward: primals, or their tangents (None: zero)."""

    grad_output: torch.Tensor | None
    input: torch.Tensor | None
    grid: torch.Tensor | None


def grid_sampler_backward_jvp(op, primals, tangents, outputs, interpolation_mode, padding_mode, align_corners):
    """Tangents (grad_input, grad_grid) of grid_sampler_{2,3}d_backward (forward-over-reverse).

    op: the entry's own overload (grid_sampler_2d_backward, grid_sampler_3d_backward or
    _grid_sampler_2d_cpu_fallback_backward). primals, tangents: GridSamplerBackwardInputs
    (plain tuples in its order do). outputs: the primal (grad_input, grad_grid); a tangent
    is built for each one that is defined (the CPU kernel computes grad_grid even when
    output_mask[1] is False).

    grad_input = Wᵀ(grid) grad_output and grad_grid = Σ_c grad_output · ∂out/∂grid(input):
    both linear in grad_output, grad_grid linear in input. Those terms are the backward
    itself applied to the tangents. The grid terms are second derivatives of the
    interpolation weights (written out in _grid_second_terms); nearest sampling is
    piecewise constant in the grid (no grid term).
    """
    grad_output, input, grid = GridSamplerBackwardInputs(*primals)
    grad_output_t, input_t, grid_t = GridSamplerBackwardInputs(*tangents)
    want_input, want_grid = (output is not None for output in outputs)
    takes_output_mask = op is not torch.ops.aten._grid_sampler_2d_cpu_fallback_backward.default

    def backward(go, x, mask):
        return op(go, x, grid, interpolation_mode, padding_mode, align_corners, *([mask] if takes_output_mask else []))

    input_tangent = grid_tangent = None
    if grad_output_t is not None:
        input_tangent, grid_tangent = backward(grad_output_t, input, [want_input, want_grid])
    if input_t is not None and want_grid:
        grid_tangent = sum_tangents(grid_tangent, backward(grad_output, input_t, [False, True])[1])
    if grid_t is not None and interpolation_mode != NEAREST:
        second_input, second_grid = _grid_second_terms(grad_output, input, grid, grid_t, interpolation_mode,
                                                       padding_mode, align_corners, want_input, want_grid)
        input_tangent, grid_tangent = sum_tangents(input_tangent, second_input), sum_tangents(grid_tangent, second_grid)
    return (input_tangent if want_input else None), (grid_tangent if want_grid else None)


class _Taps:
    """The interpolation taps around every sampled point: weights per dimension, and where
    each tap lies in the input.

    input (N, C, *spatial); sources: one (N, *out) source coordinate per spatial dim, x
    first; weights: _linear_weights or _cubic_weights.
    """

    def __init__(self, input, sources, weights, padding_mode, align_corners):
        self.input, self.weights, self.padding_mode, self.align_corners = input, weights, padding_mode, align_corners
        self.sizes = input.shape[2:][::-1]
        self.floors = [torch.floor(x) for x in sources]
        self.fracs = [x - f for x, f in zip(sources, self.floors)]
        self.values = [weights(f, derivative=False) for f in self.fracs]  # [dim][tap]
        self.slopes = [weights(f, derivative=True) for f in self.fracs]
        self.first_tap = -1 if len(self.values[0]) == 4 else 0

    def offsets(self):
        """Every tap as its offset along each dim (x first)."""
        return itertools.product(range(len(self.values[0])), repeat=len(self.sizes))

    def position(self, d, offset):
        """Integer source coordinate along d of the tap at `offset` (an int, or a tensor of
        offsets broadcast against (N, *out)); outside the input: no value."""
        position = self.floors[d] + (offset + self.first_tap)
        if self.first_tap:  # bicubic pads each tap's integer coordinate, as get_value_bounded
            position = _pad_tap(position, self.sizes[d], self.padding_mode, self.align_corners)
        return position

    def positions(self, taps):
        """Integer source coordinates (x first) of one tap, each (N, *out)."""
        return [self.position(d, tap) for d, tap in enumerate(taps)]

    def sample(self):
        """The input at every tap, (N, C, taps, *out) in offsets() order, 0 outside.

        One call of PyTorch's nearest sampler at the taps' integer coordinates: it fuses
        the index computation with the gather, and it rounds to the nearest integer, so
        the rounding of their normalisation cannot move a tap. align_corners=False,
        x = ((g + 1) size - 1) / 2, reaches every integer, for a size of 1 too.
        """
        N, C = self.input.shape[:2]
        dims, count = len(self.sizes), len(self.values[0])
        offsets = torch.arange(count, dtype=self.floors[0].dtype, device=self.floors[0].device)
        offsets = offsets.view(count, *(1,) * self.floors[0].dim())
        per_dim = []  # normalised coordinates of every tap along d: (count, N, *out), broadcast over the other dims
        for d, size in enumerate(self.sizes):
            position = self.position(d, offsets)
            per_dim.append(((2 * position + 1) * (1 / size) - 1).reshape(*(1,) * d, count, *(1,) * (dims - 1 - d),
                                                                            *position.shape[1:]))
        shape = torch.broadcast_shapes(*(c.shape for c in per_dim))
        # (count, ..., count, N, *out, dims) in offsets() order -> (N, taps * out[0], *out[1:], dims)
        tap_grid = torch.stack([c.expand(shape) for c in per_dim], -1).flatten(0, dims - 1).movedim(0, 1)
        out = tap_grid.shape[2:-1]
        tap_grid = tap_grid.reshape(N, count ** dims * out[0], *out[1:], dims)
        sampler = torch.ops.aten.grid_sampler_2d if dims == 2 else torch.ops.aten.grid_sampler_3d
        input, tap_grid = _batch_dims_in_front(self.input, tap_grid)
        return sampler(input, tap_grid, NEAREST, ZEROS, False).view(N, C, count ** dims, *out)

    def __iter__(self):
        """(taps, spread, valid) per tap: its offset along each dim, its flat index expanded
        over channels (N, C, points), and where it lies inside the input."""
        N, C = self.input.shape[:2]
        for taps in self.offsets():
            index, valid, stride = None, None, 1
            for position, size in zip(self.positions(taps), self.sizes):
                inside = (position >= 0) & (position <= size - 1)
                clamped = position.clamp(0, size - 1).long() * stride
                index = clamped if index is None else index + clamped
                valid = inside if valid is None else valid & inside
                stride *= size
            yield taps, index.reshape(N, 1, math.prod(index.shape[1:])).expand(N, C, -1), valid

    @property
    def flat(self):
        """The input with its spatial dims flattened, (N, C, points)."""
        return self.input.reshape(*self.input.shape[:2], math.prod(self.input.shape[2:]))  # no -1: ambiguous on 0 elements

    def gather(self, spread, valid):
        """The input at one tap, (N, C, *out), from __iter__'s index (clamped: mask with valid)."""
        return torch.gather(self.flat, 2, spread).reshape(*self.input.shape[:2], *valid.shape[1:])


def _grid_second_terms(grad_output, input, grid, grid_t, interpolation_mode, padding_mode, align_corners,
                       want_input, want_grid):
    """Grid terms of the backward's tangents.

    With W_tap = Π_d w_d(x_d) the weight of a tap, ẋ_d = slope_d ġ_d:
      grad_input:  scatter of grad_output · Σ_d ∂W/∂x_d ẋ_d onto each tap (adjoint of the
                   interpolation tangent);
      grad_grid_d: slope_d Σ_c grad_output · Σ_tap input[tap] Σ_e ∂²W/∂x_d∂x_e ẋ_e
                   (the slopes are piecewise constant in the grid: no term of their own).
    """
    sources, slopes, weights = _source_coordinates(input, grid, interpolation_mode, padding_mode, align_corners)
    dims = len(sources)
    rates = [slope * grid_t[..., d] for d, slope in enumerate(slopes)]
    interpolation = _Taps(input, sources, weights, padding_mode, align_corners)
    curves_w = [_weight_curvatures(weights, f) for f in interpolation.fracs]
    input_tangent = torch.zeros_like(interpolation.flat) if want_input else None
    grid_terms = [None] * dims
    for taps, spread, valid in interpolation:

        def weight(orders):  # ∂^orders W_tap: orders[d] in 0, 1, 2
            w = None
            for d, order in enumerate(orders):
                factor = (interpolation.values, interpolation.slopes, curves_w)[order][d][taps[d]]
                w = factor if w is None else w * factor
            return w

        def unit(*ds):
            orders = [0] * dims
            for d in ds:
                orders[d] += 1
            return weight(orders)

        if want_input:
            rate = sum(unit(d) * rates[d] for d in range(dims))
            rate = torch.where(valid, rate, torch.zeros_like(rate))
            input_tangent = input_tangent.scatter_add(2, spread, (grad_output * rate.unsqueeze(1)).reshape(spread.shape))
        if want_grid:
            paired = (grad_output * interpolation.gather(spread, valid)).sum(1)
            paired = torch.where(valid, paired, torch.zeros_like(paired))
            for d in range(dims):
                term = paired * sum(unit(d, e) * rates[e] for e in range(dims))
                grid_terms[d] = term if grid_terms[d] is None else grid_terms[d] + term
    grid_tangent = None
    if want_grid:
        grid_tangent = torch.stack([term * slope for term, slope in zip(grid_terms, slopes)], dim=-1)
    if want_input:
        input_tangent = input_tangent.reshape(input.shape)
    return input_tangent, grid_tangent


def _weight_curvatures(weights, frac):
    """Second derivatives in x of the tap weights."""
    if weights is _linear_weights:
        return [torch.zeros_like(frac), torch.zeros_like(frac)]
    A = CUBIC_A

    def near(t):
        return 6 * (A + 2) * t - 2 * (A + 3)

    def far(t):
        return 6 * A * t - 10 * A

    return [far(frac + 1), near(frac), near(1 - frac), far(2 - frac)]


# ------------------------------------------------------------------ coordinates


def _source_coordinates(input, grid, interpolation_mode, padding_mode, align_corners):
    """(sources, slopes, weights): per spatial dim (x first), the source coordinate x_d of
    every sampled point and ∂x_d/∂g_d; and the tap weights of the interpolation mode."""
    sizes = input.shape[2:][::-1]  # grid's last dimension lists x (width) first
    coords = [grid[..., d] for d in range(len(sizes))]
    if interpolation_mode == BICUBIC:  # padding applies to each tap (_pad_tap), not to x
        sources = [_unnormalize(c, size, align_corners) for c, size in zip(coords, sizes)]
        return sources, [_unnormalize_slope(size, align_corners) for size in sizes], _cubic_weights
    sources, slopes = zip(*(_source_and_slope(c, size, padding_mode, align_corners) for c, size in zip(coords, sizes)))
    return sources, slopes, _linear_weights


def _unnormalize(coord, size, align_corners):
    """[-1, 1] -> pixel coordinates, as grid_sampler_unnormalize."""
    return (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2


def _unnormalize_slope(size, align_corners):
    return (size - 1) / 2 if align_corners else size / 2


def _source_and_slope(coord, size, padding_mode, align_corners):
    """Source coordinate after padding, and d(source)/d(coord) with PyTorch's conventions."""
    x = _unnormalize(coord, size, align_corners)
    slope = torch.full_like(x, _unnormalize_slope(size, align_corners))
    if padding_mode == ZEROS:
        return x, slope
    if padding_mode == REFLECTION:
        x, sign = _reflect(x, *((0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)))
        slope = slope * sign
    # clip_coordinates_set_grad: the clipped side (and the limit itself) gets slope 0
    inside = (x > 0) & (x < size - 1)
    return x.clamp(0, size - 1), torch.where(inside, slope, torch.zeros_like(slope))


def _reflect(x, twice_low, twice_high):
    """reflect_coordinates_set_grad: the reflected coordinate and the sign of its slope."""
    if twice_low == twice_high:
        return torch.zeros_like(x), torch.zeros_like(x)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    shifted = x - low
    sign = torch.where(shifted < 0, -1.0, 1.0).to(x.dtype)
    distance = shifted.abs()
    flips = torch.floor(distance / span)
    extra = torch.fmod(distance, span)
    even = torch.remainder(flips, 2) == 0
    return torch.where(even, extra + low, span + low - extra), torch.where(even, sign, -sign)


# ------------------------------------------------------------------ interpolation


def _linear_weights(frac, derivative):
    """Weights of taps floor(x) + 0, 1; or their derivatives in x."""
    if derivative:
        return [-torch.ones_like(frac), torch.ones_like(frac)]
    return [1 - frac, frac]


def _cubic_weights(frac, derivative):
    """Weights of taps floor(x) − 1 … + 2 (cubic convolution); or their derivatives in x."""
    A = CUBIC_A

    def near(t):  # |t| <= 1
        return ((A + 2) * t - (A + 3)) * t * t + 1

    def far(t):  # 1 < |t| < 2
        return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A

    def near_slope(t):
        return (3 * (A + 2) * t - 2 * (A + 3)) * t

    def far_slope(t):
        return (3 * A * t - 10 * A) * t + 8 * A

    if derivative:
        return [far_slope(frac + 1), near_slope(frac), -near_slope(1 - frac), -far_slope(2 - frac)]
    return [far(frac + 1), near(frac), near(1 - frac), far(2 - frac)]


def _interpolate(interpolation: _Taps, source_rates):
    """Σ over taps of input[tap] · Σ_d ẋ_d ∂(Π_d' w_d')/∂x_d: the interpolation's tangent.

    source_rates: ẋ_d, one (N, *out) tensor per spatial dim, x first. The weights are
    combined on (N, *out) first, so the channel-wide work is one gather of every tap and
    one multiply-add per tap.
    """
    dims = len(source_rates)
    values = interpolation.sample()
    result = None
    for t, taps in enumerate(interpolation.offsets()):
        rate = None
        for d in range(dims):  # ∂(Π w)/∂x_d · ẋ_d, summed over d
            term = interpolation.slopes[d][taps[d]] * source_rates[d]
            for other in range(dims):
                if other != d:
                    term = term * interpolation.values[other][taps[other]]
            rate = term if rate is None else rate + term
        value, rate = values[:, :, t], rate.unsqueeze(1)
        result = value * rate if result is None else torch.addcmul(result, value, rate)
    return result


def _pad_tap(position, size, padding_mode, align_corners):
    if padding_mode == BORDER:
        return position.clamp(0, size - 1)
    if padding_mode == REFLECTION:
        reflected, _ = _reflect(position, *((0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)))
        return reflected.clamp(0, size - 1)
    return position
