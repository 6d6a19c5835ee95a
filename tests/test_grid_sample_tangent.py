"""grid_sample's values-only tangent by the C++ kernel (formulas/_grid_sample_tangent.cpp)
against the Python path, central differences and PyTorch's own kernels; and where it runs."""

import os
import pathlib
import subprocess
import sys

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

import torch_fwdad  # noqa: F401
from torch_fwdad.formulas import grid_sample_tangent, vision
from torch_fwdad.testing.samples.vision import grid_at_kinks

F64 = torch.float64
BILINEAR, NEAREST, BICUBIC = 0, 1, 2
MODES = {"2-d bilinear": (2, BILINEAR), "2-d nearest": (2, NEAREST), "2-d bicubic": (2, BICUBIC),
         "3-d bilinear": (3, BILINEAR), "3-d nearest": (3, NEAREST)}
TANGENTS = {"input_t": (True, False), "grid_t": (False, True), "both": (True, True)}


@pytest.fixture(autouse=True)
def kernel_built():
    if not grid_sample_tangent.extension.info()["built"]:
        pytest.skip(f"C++ grid-sample tangent not built here: {grid_sample_tangent.extension.info()['reason']}")


def randn(*shape, dtype=F64, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def sampler(dims):
    return torch.ops.aten.grid_sampler_2d if dims == 2 else torch.ops.aten.grid_sampler_3d


def problem(dims, seed=0, spread=1.2):
    """(input, grid, input_t, grid_t): small shapes of unequal sizes, a few points outside."""
    spatial, points = ((5, 6), (4, 3)) if dims == 2 else ((4, 5, 3), (3, 2, 4))
    x, x_t = randn(2, 3, *spatial, seed=seed), randn(2, 3, *spatial, seed=seed + 1)
    grid = (torch.rand(2, *points, dims, dtype=F64, generator=torch.Generator().manual_seed(seed + 2)) * 2 - 1) * spread
    return x, grid, x_t, randn(*grid.shape, seed=seed + 3)


def python_path(x, grid, x_t, grid_t, mode, padding_mode, align_corners, dims):
    """The differentiable Python path's tangent (the grid requires grad: no values-only shortcut)."""
    tangent = vision.grid_sampler_jvp(sampler(dims), x, x_t, grid.detach().requires_grad_(), grid_t, mode,
                                      padding_mode, align_corners)
    return torch.zeros_like(sampler(dims)(x, grid, mode, padding_mode, align_corners)) if tangent is None else tangent.detach()


@pytest.mark.parametrize("tangents", TANGENTS.values(), ids=list(TANGENTS))
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", [0, 1, 2], ids=["zeros", "border", "reflection"])
@pytest.mark.parametrize("case", MODES.values(), ids=list(MODES))
def test_kernel_matches_python_path_and_central_differences(case, padding_mode, align_corners, tangents):
    dims, mode = case
    x, grid, x_t, grid_t = problem(dims)
    x_t, grid_t = (x_t if tangents[0] else None), (grid_t if tangents[1] else None)
    fused = grid_sample_tangent.output_tangent(x, grid, x_t, grid_t, mode, padding_mode, align_corners)
    torch.testing.assert_close(fused, python_path(x, grid, x_t, grid_t, mode, padding_mode, align_corners, dims))

    def sample(x, grid):
        return sampler(dims)(x, grid, mode, padding_mode, align_corners)

    eps = 1e-6  # random points: no tap boundary within eps (nearest: no rounding boundary)
    moved = [(x if x_t is None else x + sign * eps * x_t, grid if grid_t is None or mode == NEAREST
              else grid + sign * eps * grid_t) for sign in (1, -1)]
    torch.testing.assert_close(fused, (sample(*moved[0]) - sample(*moved[1])) / (2 * eps), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", [0, 1, 2], ids=["zeros", "border", "reflection"])
@pytest.mark.parametrize("case", MODES.values(), ids=list(MODES))
@pytest.mark.parametrize("spatial", [(4, 5, 3), (1, 3, 1)], ids=["4x5x3", "1x3x1"])
def test_kernel_follows_pytorchs_kernels_at_tap_boundaries_and_limits(case, padding_mode, align_corners, spatial):
    # on a tap, a clip limit, a rounding boundary or outside, which taps count and the
    # coordinate's slope there are conventions: PyTorch's sampler (input term) and backward
    # kernel (grid term, through the Python path's _grid_tangent_by_backward) fix them
    dims, mode = case
    spatial = spatial[:dims]
    x, x_t = randn(2, 3, *spatial, seed=1), randn(2, 3, *spatial, seed=2)
    points = 12
    grid = grid_at_kinks(spatial, 2 * points, dims, align_corners).reshape(2, points, *(1,) * (dims - 1), dims)
    grid_t = randn(*grid.shape, seed=3)
    fused = grid_sample_tangent.output_tangent(x, grid, x_t, grid_t, mode, padding_mode, align_corners)
    expected = sampler(dims)(x_t, grid, mode, padding_mode, align_corners)
    if mode != NEAREST:
        expected = expected + vision._grid_tangent_by_backward(x, grid, grid_t, mode, padding_mode, align_corners)
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)


def normalized(source, size, align_corners):
    """The grid coordinate of a source coordinate (inverse of PyTorch's unnormalisation)."""
    return source * 2 / (size - 1) - 1 if align_corners else (2 * source + 1) / size - 1


def bilinear_problem(dtype, align_corners, same_strides):
    """(input, grid, input_t, grid_t) for the 2-D bilinear path: 2 x 23 x 17 points (blocks of
    256: two, the last one partial), source coordinates in [1, 9] along x (W = 6) and [1, 7]
    along y (H = 5), so that after any padding row 0 and column 0 are never a tap inside, while
    taps outside (zeros padding, or floor + 1 at the last row or column) are read from there."""
    g = torch.Generator().manual_seed(12)
    sources = torch.rand(2, 23, 17, 2, dtype=F64, generator=g) * torch.tensor([8.0, 6.0], dtype=F64) + 1
    sources[0, 0, :4] = torch.tensor([[5.0, 4.0], [6.0, 5.0], [1.5, 1.5], [9.0, 7.0]], dtype=F64)  # edges, outside
    grid = torch.stack([normalized(sources[..., 0], 6, align_corners), normalized(sources[..., 1], 5, align_corners)], -1)
    x = randn(2, 3, 5, 6, dtype=dtype, seed=13)
    x_t = randn(2, 3, 5, 6, dtype=dtype, seed=14) if same_strides else randn(2, 3, 6, 5, dtype=dtype, seed=14).mT
    return x, grid.to(dtype), x_t, randn(*grid.shape, dtype=dtype, seed=15)


BILINEAR_TANGENTS = {"input_t": (True, False, True), "grid_t": (False, True, True),
                     "both, same strides": (True, True, True), "both, other strides": (True, True, False)}


@pytest.mark.parametrize("tangents", BILINEAR_TANGENTS.values(), ids=list(BILINEAR_TANGENTS))
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", [0, 1, 2], ids=["zeros", "border", "reflection"])
@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["float64", "float32"])
def test_2d_bilinear_kernel_over_blocks_drops_taps_outside_unread(dtype, padding_mode, align_corners, tangents):
    # the 2-D bilinear path reads a tap outside from row 0 or column 0 and drops its term:
    # inf there must not reach the tangent (inf·0 would be NaN), whose values are the Python path's
    has_input_t, has_grid_t, same_strides = tangents
    x, grid, x_t, grid_t = bilinear_problem(dtype, align_corners, same_strides)
    x_t, grid_t = (x_t if has_input_t else None), (grid_t if has_grid_t else None)
    with_inf = []
    for tensor in (x, x_t):
        if tensor is not None:
            tensor = tensor.clone()  # same strides
            tensor[..., 0, :] = tensor[..., :, 0] = float("inf")
        with_inf.append(tensor)
    fused = grid_sample_tangent.output_tangent(with_inf[0], grid, with_inf[1], grid_t, BILINEAR, padding_mode,
                                               align_corners)
    assert fused.isfinite().all()
    expected = python_path(x, grid, x_t, grid_t, BILINEAR, padding_mode, align_corners, 2)
    torch.testing.assert_close(fused, expected, **({} if dtype == F64 else {"atol": 1e-5, "rtol": 1e-5}))


def test_2d_bilinear_kernel_gives_the_same_bits_on_the_baseline_path(tmp_path):
    # the 2-D bilinear path is compiled for the x86-64 baseline and for AVX2 (chosen where the
    # CPU has it; elsewhere both runs take the baseline); ATEN_CPU_CAPABILITY=default, torch's
    # switch to its baseline kernels, picks the baseline one in a subprocess: the same
    # operations in the same order, so the same bits (on the same inputs: torch's own kernels,
    # randn's too, change there)
    calls = [(*bilinear_problem(dtype, align, same), BILINEAR, padding, align) for dtype in (F64, torch.float32)
             for padding in (0, 1, 2) for align in (False, True) for same in (False, True)]
    torch.save(calls, tmp_path / "calls.pt")
    script = ("import sys, torch, torch_fwdad; calls = torch.load(sys.argv[1]); "
              "torch.save([torch.ops.torch_fwdad.grid_sample_tangent(*call) for call in calls], sys.argv[2])")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "calls.pt"), str(tmp_path / "baseline.pt")],
                   env=dict(os.environ, ATEN_CPU_CAPABILITY="default"), check=True, timeout=120,
                   cwd=pathlib.Path(__file__).resolve().parents[1])
    for baseline, call in zip(torch.load(tmp_path / "baseline.pt"), calls, strict=True):
        torch.testing.assert_close(baseline, grid_sample_tangent.output_tangent(*call), rtol=0, atol=0)


@pytest.mark.parametrize("case", MODES.values(), ids=list(MODES))
def test_kernel_reads_any_strides_and_float32(case):
    # non-contiguous input, tangent and grids (transposed, sliced, expanded), each with its
    # own strides, against the same values made contiguous; float32 against float64
    dims, mode = case
    x, grid, x_t, grid_t = problem(dims, seed=5)
    spatial_t = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, other strides
    channels_sliced = torch.cat([x_t, x_t], 1)[:, ::2]
    grid_sliced = torch.cat([grid, grid], -1)[..., ::2]
    expanded = grid_t[:1].expand_as(grid_t)
    args = (spatial_t, grid_sliced, channels_sliced, expanded)
    assert not any(a.is_contiguous() for a in args)
    fused = grid_sample_tangent.output_tangent(*args, mode, 2, False)
    torch.testing.assert_close(fused, grid_sample_tangent.output_tangent(*(a.contiguous() for a in args), mode, 2, False))
    single = grid_sample_tangent.output_tangent(*(a.float() for a in args), mode, 2, False)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single, fused.float(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", [(0, 3), (2, 0)], ids=["N=0", "C=0"])
def test_kernel_on_no_batch_entries_or_channels(shape):
    for dims, mode in MODES.values():
        x = torch.zeros(*shape, *(3,) * dims, dtype=F64)
        grid = torch.zeros(shape[0], *(2,) * dims, dims, dtype=F64)
        fused = grid_sample_tangent.output_tangent(x, grid, x, grid, mode, 0, False)
        assert fused.shape == sampler(dims)(x, grid, mode, 0, False).shape


def _count_kernel_calls(monkeypatch):
    calls = []
    kernel = grid_sample_tangent.output_tangent
    monkeypatch.setattr(grid_sample_tangent, "output_tangent", lambda *a: calls.append(a) or kernel(*a))
    return calls


@pytest.mark.parametrize("dims", [2, 3])
def test_jvp_reaches_the_kernel_where_it_is_chosen_and_matches_the_python_path(monkeypatch, dims):
    # torch.func.jvp and forward_ad, values only, with a grid term: the kernel runs, and the
    # switch to Python gives the same tangents
    monkeypatch.setattr(grid_sample_tangent.extension, "active", True)
    x, grid, x_t, grid_t = problem(dims, seed=7)

    def sample(x, grid):
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def forward_ad():
        with fwAD.dual_level():
            return fwAD.unpack_dual(sample(fwAD.make_dual(x, x_t), fwAD.make_dual(grid, grid_t))).tangent

    calls = _count_kernel_calls(monkeypatch)
    fused = torch.func.jvp(sample, (x, grid), (x_t, grid_t))[1], forward_ad()
    assert len(calls) == 2, "the values-only JVP did not reach the C++ kernel"
    assert all(type(a) is torch.Tensor for a in calls[0][:4]), "torch.func's wrappers reached the kernel"
    grid_sample_tangent.extension.use_python()
    python = torch.func.jvp(sample, (x, grid), (x_t, grid_t))[1], forward_ad()
    assert len(calls) == 2
    for a, b in zip(fused, python):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_jvp_without_a_grid_term_is_the_sampler_on_the_input_tangent(monkeypatch, mode):
    # no grid tangent (or nearest): one call of PyTorch's sampler, faster than the kernel
    monkeypatch.setattr(grid_sample_tangent.extension, "active", True)
    calls = _count_kernel_calls(monkeypatch)
    x, grid, x_t, grid_t = problem(2, seed=8)
    tangent = torch.func.jvp(lambda x, g: F.grid_sample(x, g, mode=mode, align_corners=True), (x, grid),
                             (x_t, grid_t if mode == "nearest" else torch.zeros_like(grid_t)))[1]
    assert len(calls) == (0 if mode == "nearest" else 1)  # a zero tangent given is still a tangent
    torch.testing.assert_close(tangent, F.grid_sample(x_t, grid, mode=mode, align_corners=True))
    _, tangent = torch.func.jvp(lambda x: F.grid_sample(x, grid, mode=mode, align_corners=True), (x,), (x_t,))
    assert len(calls) == (0 if mode == "nearest" else 1)
    torch.testing.assert_close(tangent, F.grid_sample(x_t, grid, mode=mode, align_corners=True))


def test_kernel_stays_out_of_outer_derivatives(monkeypatch):
    # reverse mode over the tangent (hessian), a grid requiring grad, and vmap over jvp must
    # get the differentiable path: the kernel has no derivative and no batching rule
    monkeypatch.setattr(grid_sample_tangent.extension, "active", True)
    calls = _count_kernel_calls(monkeypatch)
    x, grid, x_t, grid_t = (t[:1] for t in problem(3, seed=9))
    grid, grid_t = grid[:, :1, :1], grid_t[:, :1, :1]  # 1x1x1x4 points: a small Hessian

    def sample(grid):
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)

    hessian = torch.func.hessian(lambda g: sample(g).square().sum())(grid)
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(sample(fwAD.make_dual(grid.detach().requires_grad_(), grid_t))).tangent
    batched = torch.func.vmap(lambda t: torch.func.jvp(sample, (grid,), (t,))[1])(torch.stack([grid_t, -grid_t]))
    assert not calls
    assert tangent.requires_grad and hessian.shape == grid.shape * 2
    torch.testing.assert_close(batched[1], -batched[0])
    torch.testing.assert_close(batched[0], grid_sample_tangent.output_tangent(x, grid, None, grid_t, 0, 2, True))


def test_kernel_gives_the_same_values_on_several_threads():
    x, grid, x_t, grid_t = (t.repeat(4, *(1,) * (t.dim() - 1)) for t in problem(3, seed=11))
    threads = torch.get_num_threads()
    try:
        results = []
        for count in (1, 3):
            torch.set_num_threads(count)
            results.append(grid_sample_tangent.output_tangent(x, grid, x_t, grid_t, BILINEAR, 0, False))
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)


def test_info_names_the_path_and_its_switches(monkeypatch):
    extension = grid_sample_tangent.extension
    monkeypatch.setattr(extension, "active", extension.active)  # restored after the test
    assert extension.info()["path"] == "c++"
    extension.use_python(True)
    assert not extension.active and extension.info() == {
        "path": "python", "built": True, "reason": "the Python path was chosen at run time"}
    extension.use_python(False)
    assert extension.active
    monkeypatch.setenv(grid_sample_tangent.ENVIRONMENT_VARIABLE, "python")
    assert extension.load() == (None, f"{grid_sample_tangent.ENVIRONMENT_VARIABLE}=python")


def test_kernel_refuses_what_it_does_not_compute():
    x, grid, x_t, grid_t = problem(2)
    cases = {"no tangent given": (x, grid, None, None, 0),
             "bicubic is 2-D only": (*problem(3)[:2], None, problem(3)[3], BICUBIC),
             "input and grid dtypes differ": (x, grid.float(), None, grid_t.float(), 0),
             "grid_t must have the grid's sizes": (x, grid, None, grid_t[:1], 0)}
    for message, (*tensors, mode) in cases.items():
        with pytest.raises(RuntimeError, match=message):
            grid_sample_tangent.output_tangent(*tensors, mode, 0, False)
