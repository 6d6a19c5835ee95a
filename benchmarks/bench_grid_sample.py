"""F.grid_sample under forward mode: (primal + tangent) / primal time, per mode.

Tangents on the input and the grid; float32, N=8, C=16, 64x64 input, 64x64 grid (2-D)
and 16^3 (3-D). Beside each JVP, its floor with PyTorch's kernels, timed bare in the same
run: the primal, the sampler applied to the input's tangent (the input term), and one
sampler call per spatial dimension (each ∂out/∂x_d is an interpolation of the same taps
with other weights: the grid term needs those gathers once per dimension).
Usage: python benchmarks/bench_grid_sample.py
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils import benchmark

import torch_fwdad  # noqa: F401


def median(fn, min_run_time):
    """Median seconds of fn() (torch.utils.benchmark, torch's thread count)."""
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per timing (torch.utils.benchmark)")
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    cases = [("2-d", (8, 16, 64, 64), (8, 64, 64, 2), ("bilinear", "nearest", "bicubic")),
             ("3-d", (2, 8, 16, 16, 16), (2, 16, 16, 16, 3), ("bilinear", "nearest"))]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32")
    for dims, x_shape, grid_shape, modes in cases:
        x, tx = torch.randn(x_shape, generator=g), torch.randn(x_shape, generator=g)
        grid, tgrid = torch.rand(grid_shape, generator=g) * 2.2 - 1.1, torch.randn(grid_shape, generator=g)
        for mode in modes:
            fn = (lambda x, grid: F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False))
            primal = median(lambda: fn(x, grid), args.min_run_time)
            jvp = median(lambda: torch.func.jvp(fn, (x, grid), (tx, tgrid)), args.min_run_time)
            samplers = 2 + (grid.size(-1) if mode != "nearest" else 0)  # nearest: no grid term
            floor = median(lambda: [fn(x, grid) for _ in range(samplers)], args.min_run_time)
            print(f"{dims} {mode:9} primal {primal * 1e3:7.2f} ms  jvp {jvp * 1e3:7.2f} ms  ratio {jvp / primal:5.2f}x"
                  f"  floor {floor / primal:5.2f}x ({samplers} sampler calls)  jvp / floor {jvp / floor:5.2f}x")


if __name__ == "__main__":
    main()
