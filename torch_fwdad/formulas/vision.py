"""Grid sampling (grid_sampler_2d/3d): tangents for the input and for the grid.

The sampler is linear in its input, so the input term is the sampler applied to the
input's tangent. The grid term is Σ_d (∂out/∂x_d)(∂x_d/∂g_d) ġ_d, with x_d the source
coordinate along spatial dimension d. ∂out/∂x_d is the same interpolation with the
weights along d replaced by their derivatives; ∂x_d/∂g_d is the unnormalisation slope
times the padding's slope, with PyTorch's backward conventions (0 where a coordinate is
clipped, a sign flip per reflection). Nearest sampling is piecewise constant in the grid:
PyTorch's backward gives the grid a zero gradient, and so does this tangent.
"""

from __future__ import annotations

import itertools

import torch

__all__ = ["grid_sampler_grid_jvp"]

BILINEAR, NEAREST, BICUBIC = 0, 1, 2
ZEROS, BORDER, REFLECTION = 0, 1, 2
CUBIC_A = -0.75  # PyTorch's cubic convolution coefficient


def grid_sampler_grid_jvp(input, grid, grid_t, interpolation_mode, padding_mode, align_corners):
    """Tangent of grid_sampler_{2,3}d with respect to the grid (zero for nearest)."""
    if interpolation_mode == NEAREST:  # zero, as PyTorch's backward for the grid
        return torch.zeros((*input.shape[:2], *grid.shape[1:-1]), dtype=input.dtype, device=input.device)
    sizes = input.shape[2:][::-1]  # grid's last dimension lists x (width) first
    coords = [grid[..., d] for d in range(len(sizes))]
    if interpolation_mode == BICUBIC:
        sources = [_unnormalize(c, size, align_corners) for c, size in zip(coords, sizes)]
        slopes = [_unnormalize_slope(size, align_corners) for size in sizes]
        weights = _cubic_weights
    else:
        sources, slopes = zip(*(_source_and_slope(c, size, padding_mode, align_corners) for c, size in zip(coords, sizes)))
        weights = _linear_weights
    source_rates = [slope * grid_t[..., d] for d, slope in enumerate(slopes)]  # ẋ_d
    return _interpolate(input, sources, padding_mode, align_corners, weights, source_rates)


# ------------------------------------------------------------------ coordinates


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


def _interpolate(input, sources, padding_mode, align_corners, weights, source_rates):
    """Σ over taps of input[tap] · Σ_d ẋ_d ∂(Π_d' w_d')/∂x_d: the interpolation's tangent.

    input (N, C, *spatial); sources and source_rates: one (N, *out) tensor per spatial
    dim, x first. Each tap is gathered once; the weights are combined on (N, *out) first,
    so the channel-wide work is one gather and one multiply-add per tap.
    """
    N, C = input.shape[:2]
    sizes = input.shape[2:][::-1]
    flat = input.reshape(N, C, -1)
    floors = [torch.floor(x) for x in sources]
    fracs = [x - f for x, f in zip(sources, floors)]
    values_w = [weights(f, derivative=False) for f in fracs]
    slopes_w = [weights(f, derivative=True) for f in fracs]
    first_tap = -1 if len(values_w[0]) == 4 else 0
    result = None
    for taps in itertools.product(range(len(values_w[0])), repeat=len(sizes)):
        index, valid, stride = None, None, 1
        for d, tap in enumerate(taps):
            position = floors[d] + (tap + first_tap)
            if first_tap:  # bicubic pads each tap's integer coordinate, as get_value_bounded
                position = _pad_tap(position, sizes[d], padding_mode, align_corners)
            ok = (position >= 0) & (position <= sizes[d] - 1)
            clamped = position.clamp(0, sizes[d] - 1).long() * stride
            index = clamped if index is None else index + clamped
            valid = ok if valid is None else valid & ok
            stride *= sizes[d]
        rate = None
        for d in range(len(sizes)):  # ∂(Π w)/∂x_d · ẋ_d, summed over d
            term = slopes_w[d][taps[d]] * source_rates[d]
            for other in range(len(sizes)):
                if other != d:
                    term = term * values_w[other][taps[other]]
            rate = term if rate is None else rate + term
        values = torch.gather(flat, 2, index.reshape(N, 1, -1).expand(N, C, -1)).reshape(N, C, *index.shape[1:])
        term = values * torch.where(valid, rate, torch.zeros_like(rate)).unsqueeze(1)
        result = term if result is None else result + term
    return result


def _pad_tap(position, size, padding_mode, align_corners):
    if padding_mode == BORDER:
        return position.clamp(0, size - 1)
    if padding_mode == REFLECTION:
        reflected, _ = _reflect(position, *((0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)))
        return reflected.clamp(0, size - 1)
    return position
