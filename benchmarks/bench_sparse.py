"""Sparse Jacobians/Hessians (torch_fwdad.functional) side by side with PyTorch's dense ones.

For the six problems of issue 6 this prints colour counts (chosen colouring, the alternatives,
the lower bound), preparation time (structural detection + colouring), evaluation time, peak
memory, and ratios against torch.func.jacfwd / torch.autograd.functional.jacobian (Hessians:
torch.func.hessian / torch.autograd.functional.hessian). Dense baselines at n >= 10^4 take
seconds each and run once; everything else reports the median of several runs.

    python benchmarks/bench_sparse.py            # all problems, a few minutes on 2 cores
    python benchmarks/bench_sparse.py --quick    # skip dense baselines above 5,000 unknowns
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import torch

from torch_fwdad.functional import hessian_plan, jacobian_plan
from torch_fwdad.functional.coloring import coloring
from torch_fwdad.functional.examples import PROBLEMS

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def measure(call, repeats):
    """(median seconds, peak resident growth in bytes over the first run, sampled every ms)."""
    baseline, peak, running = resident_bytes(), [0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], resident_bytes() - baseline)
            time.sleep(0.001)
    sampler = threading.Thread(target=sample)
    sampler.start()
    times = []
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            result = call()
            times.append(time.perf_counter() - start)
            del result
    finally:
        running[0] = False
        sampler.join()
    return statistics.median(times), peak[0]


def dense_baselines(func, x, kind):
    if kind == "hessian":
        return {"torch.func.hessian": lambda: torch.func.hessian(func)(x),
                "autograd.functional.hessian": lambda: torch.autograd.functional.hessian(
                    func, x, vectorize=True, outer_jacobian_strategy="forward-mode")}
    return {"torch.func.jacfwd": lambda: torch.func.jacfwd(func)(x),
            "autograd.functional.jacobian": lambda: torch.autograd.functional.jacobian(
                func, x, strategy="forward-mode", vectorize=True)}


def color_counts(plan, kind):
    kinds = ("star", "acyclic", "column") if kind == "hessian" else ("column", "row")
    counts = {}
    for other in kinds:
        if other == "column" and kind == "hessian" and plan.pattern.nnz > 5_000_000:
            counts[other] = "skipped"
            continue
        counts[other] = coloring(plan.pattern, other, plan.ordering, plan.refine).num_colors
    return counts


def run_problem(name, size, args, sparse_only=False):
    func, x, kind = PROBLEMS[name](**size)
    plan = (hessian_plan if kind == "hessian" else jacobian_plan)("detect")
    start = time.perf_counter()
    plan.prepare(func, x)
    prep = time.perf_counter() - start
    evaluate = lambda: plan(func, x)  # noqa: E731
    evaluate()  # warm-up
    seconds, memory = measure(evaluate, args.repeats)
    counts = color_counts(plan, kind)
    print(f"\n== {name} {size}: n={x.numel():,} nnz={plan.pattern.nnz:,} ({kind})")
    print(f"   colours: {plan.num_colors} ({plan.coloring.kind}, {plan.ordering}, refine "
          f"{plan.coloring.refine}: greedy gave {plan.coloring.greedy_num_colors}); lower bound "
          f"{plan.coloring.lower_bound}; alternatives {counts}")
    m, n = plan.pattern.shape
    by_count = (plan.pattern.nnz + plan.num_colors * (m + n)) * x.element_size()
    memory = max(memory, by_count)  # below the sampler's resolution, count the tensors instead
    print(f"   sparse: prep {prep * 1e3:9.1f} ms   eval {seconds * 1e3:9.2f} ms   peak +{memory / 2**20:8.1f} MiB "
          f"(nnz + colours*(m+n) values: {by_count / 2**20:.2f} MiB)")
    if sparse_only or (args.quick and x.numel() > 5_000):
        print("   dense baselines skipped")
        return
    expected = None
    for label, call in dense_baselines(func, x, kind).items():
        repeats = 1 if x.numel() >= 10_000 else args.repeats
        dense_seconds, dense_memory = measure(call, repeats)
        print(f"   {label:28s} {dense_seconds * 1e3:10.1f} ms  peak +{dense_memory / 2**20:8.1f} MiB   "
              f"sparse is {dense_seconds / seconds:8.1f}x faster, {dense_memory / max(memory, 1):7.1f}x less memory")
        if expected is None:
            expected = call().reshape(plan.pattern.shape)
            error = (plan(func, x, output="dense").reshape(expected.shape) - expected).abs().max().item()
            print(f"   max |sparse - dense| = {error:.2e}")
            del expected
            expected = True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip dense baselines above 5,000 unknowns")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for every contender (default 1: fair and stable on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64")
    run_problem("tridiagonal", {"n": 10_000}, args)
    run_problem("tridiagonal", {"n": 100_000}, args, sparse_only=True)
    run_problem("diagonal_square", {"n": 10_000}, args)
    run_problem("brusselator", {"N": 32}, args)
    run_problem("laplacian_hessian", {"side": 64}, args)
    run_problem("arrowhead_hessian", {"n": 3_200}, args)
    run_problem("banded_dense_row_hessian", {"n": 10_000}, args)


if __name__ == "__main__":
    main()
