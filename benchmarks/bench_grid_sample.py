"""F.grid_sample under forward mode: the JVP beside its floor, side by side in one run.

Tangents on the input and the grid; float32, N=8, C=16, 64x64 input, 64x64 grid (2-D)
and N=2, C=8, 16^3 input and grid (3-D); every mode, zeros and border padding (reflection
costs as border), align_corners both ways. Columns (medians of torch.utils.benchmark,
milliseconds):
  primal   the sampler alone
  input    the input term: the sampler applied to the input's tangent (it is linear in the input)
  grid     the grid term's minimum, Σ_d ẋ_d ∂out/∂x_d: it reads the same taps as the
           primal (for bilinear, the 4 taps' differences), weighted by the weights'
           derivatives: one more pass over the taps, timed as one sampler call with the same
           grid (what a fused kernel would pay); nearest has none
  floor    primal + input + grid
  together the floor's calls timed as one, back to back with their outputs alive together, as
           in a JVP: twice (three times) the memory of one call is touched, which costs more
           than the three calls timed apart, each over its own cached data
  path     what computes the values-only tangent by default: "c++" (the fused kernel,
           formulas/_grid_sample_tangent.cpp) or "python" (PyTorch's kernels, formulas/vision.py)
  jvp      torch.func.jvp through F.grid_sample with torch_fwdad: primal + tangent, default path
  jvp py   the same with the C++ kernel switched off (grid_sample_tangent.extension.use_python())
  fwad, fwad py   the same two through torch.autograd.forward_ad (no torch.func wrapping: the
           difference is torch.func's per-call cost)
  func     torch.func.jvp's own cost on these inputs: jvp of a function returning its input
           unchanged, what any op pays under torch.func.jvp before it computes anything
Ratios ÷ floor of each JVP column, and jvp ÷ (floor + func): the part of the gap that is
torch_fwdad's. --cpu-time times one thread's CPU time (time.thread_time, one torch thread):
figures that hold when other processes share the cores. Every figure is the best of
--rounds rounds run one after another (the round least disturbed by other processes).
Usage: python benchmarks/bench_grid_sample.py [--min-run-time 0.3] [--cpu-time] [--rounds 3] [--small]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.utils import benchmark

import torch_fwdad  # noqa: F401  (installs the rules)
from torch_fwdad.formulas import grid_sample_tangent

CASES = [  # (dims, input shape, grid shape, modes)
    ("2-d", (8, 16, 64, 64), (8, 64, 64, 2), ("bilinear", "nearest", "bicubic")),
    ("3-d", (2, 8, 16, 16, 16), (2, 16, 16, 16, 3), ("bilinear", "nearest")),
]
SMALL_CASES = [  # --small: the same table on tiny shapes (a smoke run)
    ("2-d", (1, 2, 8, 8), (1, 8, 8, 2), ("bilinear", "nearest", "bicubic")),
    ("3-d", (1, 2, 4, 4, 4), (1, 4, 4, 4, 3), ("bilinear", "nearest")),
]


CLOCK = {"timer": time.perf_counter}  # --cpu-time: time.thread_time


def median(fn, min_run_time):
    """Median milliseconds of fn() (torch.utils.benchmark, torch's thread count)."""
    fn()  # warm up
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), timer=CLOCK["timer"])
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def default_path(x, mode):
    """Which path computes this configuration's values-only tangent by default."""
    return "c++" if grid_sample_tangent.extension.active and mode != "nearest" else "python"  # with a grid term


def jvps(x, grid, tx, tgrid, sample, min_run_time):
    """(jvp, fwad) milliseconds."""
    jvp = median(lambda: torch.func.jvp(sample, (x, grid), (tx, tgrid)), min_run_time)

    def forward_ad():
        with fwAD.dual_level():
            return fwAD.unpack_dual(sample(fwAD.make_dual(x, tx), fwAD.make_dual(grid, tgrid))).tangent

    return jvp, median(forward_ad, min_run_time)


def best_row(x, grid, tx, tgrid, mode, padding, align_corners, min_run_time, rounds):
    """`row`'s columns, each the best of `rounds` rounds."""
    return tuple(map(min, zip(*(row(x, grid, tx, tgrid, mode, padding, align_corners, min_run_time)
                                for _ in range(rounds)))))


def row(x, grid, tx, tgrid, mode, padding, align_corners, min_run_time):
    """(primal, input, grid, together, func, jvp, fwad, jvp py, fwad py) milliseconds for one configuration."""

    def sample(x, grid):
        return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align_corners)

    primal = median(lambda: sample(x, grid), min_run_time)
    input_term = median(lambda: sample(tx, grid), min_run_time)
    grid_term = median(lambda: sample(x, grid), min_run_time) if mode != "nearest" else 0.0  # nearest: zero
    together = median(lambda: (sample(x, grid), sample(tx, grid), sample(x, grid) if mode != "nearest" else None),
                      min_run_time)
    func = median(lambda: torch.func.jvp(lambda a, b: a, (x, grid), (tx, tgrid)), min_run_time)
    default = jvps(x, grid, tx, tgrid, sample, min_run_time)
    active = grid_sample_tangent.extension.active
    grid_sample_tangent.extension.use_python()
    try:
        python = jvps(x, grid, tx, tgrid, sample, min_run_time)
    finally:
        grid_sample_tangent.extension.active = active
    return (primal, input_term, grid_term, together, func, *default, *python)


def per_call_costs(min_run_time):
    """What torch.func.jvp and forward_ad cost per call around any op: one with a built-in
    formula (torch.sin) on 8 elements, whose own work is negligible."""
    x, t = torch.ones(8), torch.ones(8)
    jvp = median(lambda: torch.func.jvp(torch.sin, (x,), (t,)), min_run_time)

    def forward_ad():
        with fwAD.dual_level():
            return fwAD.unpack_dual(torch.sin(fwAD.make_dual(x, t))).tangent

    print(f"per-call cost around an op with a built-in formula (torch.sin, 8 elements): torch.func.jvp "
          f"{jvp:.3f} ms, forward_ad {median(forward_ad, min_run_time):.3f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds per timing (torch.utils.benchmark)")
    parser.add_argument("--cpu-time", action="store_true", help="one thread, timed by its CPU time")
    parser.add_argument("--small", action="store_true", help="tiny shapes (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per configuration; the best is printed")
    args = parser.parse_args(argv)
    if args.cpu_time:
        torch.set_num_threads(1)
        CLOCK["timer"] = time.thread_time
    g = torch.Generator().manual_seed(0)
    clock = "CPU time of one thread" if args.cpu_time else "wall clock"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, milliseconds of {clock}; "
          f"C++ grid-sample tangent: {grid_sample_tangent.extension.info()['reason']}")
    per_call_costs(args.min_run_time)
    print(f"{'case':42} {'primal':>7} {'input':>7} {'grid':>7} {'floor':>7} {'togeth.':>7} {'func':>6} {'path':>6}"
          f" {'jvp':>7} {'jvp py':>7} {'fwad':>7} {'fwad py':>7}  {'floor/primal':>12}  ÷floor: {'jvp':>6}"
          f" {'jvp py':>6} {'fwad':>6} {'fwad py':>7}  ÷together: {'jvp':>6} {'jvp py':>6}  jvp÷(floor+func)")
    for dims, x_shape, grid_shape, modes in SMALL_CASES if args.small else CASES:
        x, tx = torch.randn(x_shape, generator=g), torch.randn(x_shape, generator=g)
        # a few points outside [-1, 1], where padding acts
        grid, tgrid = torch.rand(grid_shape, generator=g) * 2.2 - 1.1, torch.randn(grid_shape, generator=g)
        for mode, padding, align_corners in itertools.product(modes, ("zeros", "border"), (False, True)):
            primal, input_term, grid_term, together, func, *timed = best_row(
                x, grid, tx, tgrid, mode, padding, align_corners, args.min_run_time, args.rounds)
            floor = primal + input_term + grid_term
            case = f"{dims} {mode} {padding} align_corners={align_corners}"
            jvp, fwad, jvp_python, fwad_python = timed
            print(f"{case:42} {primal:7.2f} {input_term:7.2f} {grid_term:7.2f} {floor:7.2f} {together:7.2f}"
                  f" {func:6.2f} {default_path(x, mode):>6}"
                  f" {jvp:7.2f} {jvp_python:7.2f} {fwad:7.2f} {fwad_python:7.2f}  {floor / primal:11.2f}x         "
                  + " ".join(f"{t / floor:5.2f}x" for t in (jvp, jvp_python, fwad)) + f" {fwad_python / floor:6.2f}x"
                  + f"             {jvp / together:5.2f}x {jvp_python / together:5.2f}x"
                  + f"  {jvp / (floor + func):15.2f}x", flush=True)


if __name__ == "__main__":
    main()
