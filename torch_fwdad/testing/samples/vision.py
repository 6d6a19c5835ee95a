"""Samples for grid sampling: every interpolation x padding mode, both corner alignments.

Grids reach past [-1, 1] so that zero padding, clipping and reflection all act. Points
where the sampler has a kink in the grid (integer source coordinates, the clip limits) are
avoided by random grids; the tangent there follows PyTorch's backward.
"""

import itertools

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for

MODES_2D = {"bilinear": 0, "nearest": 1, "bicubic": 2}
MODES_3D = {"bilinear": 0, "nearest": 1}
PADDINGS = {"zeros": 0, "border": 1, "reflection": 2}


def grid_at_kinks(spatial, points, dims, align_corners):
    """(points, dims) float64 grid coordinates on the sampler's kinks, for the tests that pin
    PyTorch's conventions there: integer source coordinates (tap boundaries), the clip limits,
    half-integers (nearest's rounding), just inside and far outside the input, and random
    ones. spatial: the input's spatial sizes (z, y, x)."""
    def normalized(source, size):  # inverse of PyTorch's unnormalisation
        return source * 2 / (size - 1) - 1 if align_corners else (2 * source + 1) / size - 1

    columns = []
    for d in range(dims):
        size = spatial[-1 - d]
        sources = torch.tensor([0, 1, size - 1, size - 2, -1, size, -0.5, size - 0.5, -5, size + 5, 0.25, 1.75],
                               dtype=torch.float64)
        sources = sources[torch.randperm(len(sources), generator=torch.Generator().manual_seed(d))]
        columns.append(normalized(sources, size) if size > 1 or not align_corners else sources)
    grid = torch.stack(columns, -1)
    return grid.repeat(points // len(grid) + 1, 1)[:points]


def _grid(*shape, dtype, device):
    return make_tensor(*shape, dtype=dtype, device=device, low=-1.3, high=1.3)


def _mode_cases(modes):
    for index, ((mode, m), (padding, p)) in enumerate(itertools.product(modes.items(), PADDINGS.items())):
        align = bool(index % 2)
        yield m, p, align, f"{mode} {padding} align_corners={align}"


def _grid_2d(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for mode, padding, align, desc in _mode_cases(MODES_2D):
        yield Sample((make_arg(1, 2, 3, 4), _grid(1, 2, 2, 2, dtype=dtype, device=device),
                      mode, padding, align), desc=desc)
    yield Sample((make_arg(2, 1, 3, 3, noncontiguous=True),
                  _grid(2, 3, 1, 2, dtype=dtype, device=device), 0, 0, False), desc="batched noncontiguous")
    yield Sample((make_arg(1, 2, 3, 3), _grid(1, 0, 2, 2, dtype=dtype, device=device), 0, 1, True),
                 desc="empty grid")
    yield Sample((make_arg(1, 1, 1, 1), _grid(1, 2, 1, 2, dtype=dtype, device=device), 2, 2, True),
                 desc="1x1 input bicubic reflection")
    yield Sample((make_arg(0, 2, 3, 3), _grid(0, 2, 2, 2, dtype=dtype, device=device), 0, 0, False),
                 desc="empty batch")
    yield Sample((make_arg(2, 0, 3, 3), _grid(2, 2, 2, 2, dtype=dtype, device=device), 2, 1, True),
                 desc="no channels")


def _grid_errors(device):
    x = torch.randn(1, 1, 3, 3, dtype=torch.float64, device=device)
    yield ErrorSample((x, torch.zeros(1, 2, 2, 3, dtype=torch.float64, device=device), 0, 0, False), desc="grid last dim 3")
    yield ErrorSample((x, torch.zeros(2, 2, 2, 2, dtype=torch.float64, device=device), 0, 0, False), desc="batch mismatch")


@samples_for("aten::grid_sampler_2d", errors=_grid_errors)
def grid_sampler_2d_samples(dtype, device):
    yield from _grid_2d(dtype, device)


# The fallback kernel takes float32 only, which finite differences cannot judge: the check
# matrix skips it and tests/test_vision_embedding.py compares its tangents in float32 with
# grid_sampler_2d's (checked above in float64) on these samples.
@samples_for("aten::_grid_sampler_2d_cpu_fallback", dtypes=(torch.float32,), cpu_runnable=False)
def grid_sampler_2d_cpu_fallback_samples(dtype, device):
    yield from _grid_2d(dtype, device)


@samples_for("aten::grid_sampler_3d")
def grid_sampler_3d_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for mode, padding, align, desc in _mode_cases(MODES_3D):
        yield Sample((make_arg(1, 1, 2, 3, 2), _grid(1, 2, 1, 2, 3, dtype=dtype, device=device),
                      mode, padding, align), desc=desc)
    yield Sample((make_arg(2, 2, 2, 2, 2).transpose(2, 4),
                  _grid(2, 1, 2, 1, 3, dtype=dtype, device=device), 0, 2, True), desc="batched transposed")
    yield Sample((make_arg(0, 1, 2, 2, 2), _grid(0, 1, 2, 1, 3, dtype=dtype, device=device),
                  0, 1, False), desc="empty batch")
    yield Sample((make_arg(1, 0, 2, 2, 2), _grid(1, 2, 1, 1, 3, dtype=dtype, device=device),
                  0, 0, True), desc="no channels")


# Backward ops (forward-over-reverse): the forward samples, with a grad_output of the
# output's shape and each output mask.
def _backward_samples(forward, samples, masks=True):
    for sample in samples:
        x, grid, mode, padding, align = sample.args
        grad_output = torch.randn_like(forward(x, grid, mode, padding, align))
        cases = (((True, True), ""), ((True, False), " input only"), ((False, True), " grid only")) if masks else (((True, True), ""),)
        for mask, suffix in cases:
            if suffix and not sample.desc.startswith("bilinear"):
                continue
            args = (grad_output, x, grid, mode, padding, align) + ((list(mask),) if masks else ())
            # without input's gradient the first output is undefined (None), which the checks'
            # torch.func.jvp cannot return: check the grid's gradient alone
            yield Sample(args, desc=sample.desc + suffix, wrapper=_grad_grid_only if suffix == " grid only" else None)


def _grad_grid_only(op, *args):
    grad_input, grad_grid = op(*args)
    assert grad_input is None
    return grad_grid


@samples_for("aten::grid_sampler_2d_backward")
def grid_sampler_2d_backward_samples(dtype, device):
    yield from _backward_samples(torch.grid_sampler_2d, _grid_2d(dtype, device))


@samples_for("aten::_grid_sampler_2d_cpu_fallback_backward", dtypes=(torch.float32,), cpu_runnable=False)
def grid_sampler_2d_cpu_fallback_backward_samples(dtype, device):
    yield from _backward_samples(torch._grid_sampler_2d_cpu_fallback, _grid_2d(dtype, device), masks=False)


@samples_for("aten::grid_sampler_3d_backward")
def grid_sampler_3d_backward_samples(dtype, device):
    yield from _backward_samples(torch.grid_sampler_3d, grid_sampler_3d_samples(dtype, device))
