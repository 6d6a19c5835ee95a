"""torch.cdist (p=2) under forward mode: JVP time beside its floor, side by side in one run.

2048 x 2048 points of dimension 64, float32, tangents on both inputs (medians of
torch.utils.benchmark). Rows:
  primal       torch.cdist alone (PyTorch's matmul path, _euclidean_dist, for > 25 points)
  torch_fwdad  torch.func.jvp through it: primal + tangent
  floor        primal + what any tangent needs at minimum, timed bare on preallocated
               outputs: the one matmul [x1, t1]·[t2, x2]ᵀ (t1·x2ᵀ + x1·t2ᵀ, K = 2·dim)
               and one pass over the P×R result to divide by the distance
--cpu-time times one thread's CPU time (time.thread_time, one torch thread): figures that
hold when other processes share the cores.
Usage: python benchmarks/bench_cdist.py [--points 2048] [--dim 64] [--cpu-time]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils import benchmark

import torch_fwdad  # noqa: F401  (installs the rules)


CLOCK = {"timer": time.perf_counter}  # --cpu-time: time.thread_time


def median(fn, min_run_time):
    """Median seconds of fn() (torch.utils.benchmark, torch's thread count)."""
    fn()  # warm up
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), timer=CLOCK["timer"])
    return timer.blocked_autorange(min_run_time=min_run_time).median


def tangent_floor(x1, x2, t1, t2, dist):
    """The bare work of the tangent: one matmul of K = 2·dim, one division pass (outputs preallocated)."""
    left, right = torch.cat([x1, t1], -1), torch.cat([t2, x2], -1)
    out = torch.empty_like(dist)

    def work():
        torch.mm(left, right.mT, out=out)
        out.div_(dist)

    return work


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per timing (torch.utils.benchmark)")
    parser.add_argument("--cpu-time", action="store_true", help="one thread, timed by its CPU time")
    args = parser.parse_args(argv)
    if args.cpu_time:
        torch.set_num_threads(1)
        CLOCK["timer"] = time.thread_time
    g = torch.Generator().manual_seed(0)
    x1, x2, t1, t2 = (torch.randn(args.points, args.dim, generator=g) for _ in range(4))
    dist = torch.cdist(x1, x2)
    primal = median(lambda: torch.cdist(x1, x2), args.min_run_time)
    jvp = median(lambda: torch.func.jvp(torch.cdist, (x1, x2), (t1, t2)), args.min_run_time)
    floor = primal + median(tangent_floor(x1, x2, t1, t2, dist), args.min_run_time)
    clock = "CPU time of one thread" if args.cpu_time else "wall clock"
    print(f"cdist {args.points}x{args.points} points, dim {args.dim}, float32, {torch.get_num_threads()} threads, {clock}")
    print(f"primal {primal * 1e3:.2f} ms   torch_fwdad {jvp * 1e3:.2f} ms ({jvp / primal:.2f}x)   "
          f"floor {floor * 1e3:.2f} ms ({floor / primal:.2f}x)   torch_fwdad / floor {jvp / floor:.2f}x")


if __name__ == "__main__":
    main()
