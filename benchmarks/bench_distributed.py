"""JVP cost through a 2-rank tensor-parallel MLP (gloo, CPU), against one process.

The MLP is Megatron-style, written with the functional collectives: a column-parallel
linear (each rank holds half the hidden units), tanh, a row-parallel linear, then an
all_reduce of the partial outputs. Printed (rank 0; medians of a fixed number of runs,
the same count on every rank so that the collectives pair up):
- JVP ÷ primal with torch_fwdad on 2 ranks, next to JVP ÷ primal of the same MLP in one process;
- the all_reduce on the tangent against the all_reduce on the primal, with two floors: the
  same transform on a function without the collective, and a second primal all_reduce.

    python benchmarks/bench_distributed.py [--batch 256 --width 1024 --runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as fc
from torch.utils.benchmark import Timer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch_fwdad  # noqa: E402,F401 - installs the collective rules
from torch_fwdad.distributed.launch import run_cases  # noqa: E402

SIZES = {"batch": 256, "width": 1024, "runs": 30}


def weights(width, generator):
    return (torch.randn(4 * width, width, generator=generator) / width ** 0.5,
            torch.randn(width, 4 * width, generator=generator) / (4 * width) ** 0.5)


def mlp(x, w1, w2, reduce=None):
    partial = torch.tanh(x @ w1.T) @ w2.T
    return partial if reduce is None else reduce(partial)


def medians_ms(statements: dict[str, str], env, rounds) -> dict[str, float]:
    """Median of `rounds` single calls of each statement, the statements interleaved round by
    round (so that load on a shared machine falls on all of them alike). Every rank runs the
    same calls in the same order, so the collectives pair up."""
    timers = {name: Timer(statement, globals=env) for name, statement in statements.items()}
    for timer in timers.values():
        timer.timeit(1)  # warm-up
    samples = {name: [] for name in statements}
    for _ in range(rounds):
        for name, timer in timers.items():
            dist.barrier()
            samples[name].append(timer.timeit(1).mean)
    return {name: 1e3 * statistics.median(times) for name, times in samples.items()}


def bench_rank(rank, world):
    batch, width, runs = SIZES["batch"], SIZES["width"], SIZES["runs"]
    generator = torch.Generator().manual_seed(0)
    w1, w2 = weights(width, generator)
    x, t = torch.randn(batch, width, generator=generator), torch.randn(batch, width, generator=generator)
    group = dist.group.WORLD
    shard1, shard2 = w1.chunk(world, 0)[rank].contiguous(), w2.chunk(world, 1)[rank].contiguous()

    def reduce(v):
        return fc.all_reduce(v, "sum", group) * 1  # `* 1` waits, as a consumer would

    env = dict(torch=torch, mlp=mlp, x=x, t=t, w1=w1, w2=w2, s1=shard1, s2=shard2, reduce=reduce,
               y=torch.randn(batch, width, generator=generator))
    ms = medians_ms({
        "tp_primal": "mlp(x, s1, s2, reduce)",
        "tp_jvp": "torch.func.jvp(lambda v: mlp(v, s1, s2, reduce), (x,), (t,))",
        "one_primal": "mlp(x, w1, w2)",
        "one_jvp": "torch.func.jvp(lambda v: mlp(v, w1, w2), (x,), (t,))",
        "reduce_primal": "reduce(y)",
        "reduce_twice": "reduce(y); reduce(t)",
        "transform_floor": "torch.func.jvp(lambda v: v * 1, (y,), (t,))",
        "reduce_jvp": "torch.func.jvp(reduce, (y,), (t,))",
    }, env, runs)
    if rank == 0:
        print(f"tensor-parallel MLP, batch {batch}, width {width} -> {4 * width} -> {width}, float32, {world} ranks "
              f"(gloo, CPU); medians of {runs} interleaved rounds")
        print(f"  {world} ranks:    primal {ms['tp_primal']:8.2f} ms   jvp {ms['tp_jvp']:8.2f} ms   "
              f"jvp/primal {ms['tp_jvp'] / ms['tp_primal']:5.2f}x")
        print(f"  one process: primal {ms['one_primal']:8.2f} ms   jvp {ms['one_jvp']:8.2f} ms   "
              f"jvp/primal {ms['one_jvp'] / ms['one_primal']:5.2f}x")
        print(f"  all_reduce of one {batch}x{width} output: on the primal {ms['reduce_primal']:6.2f} ms; two back to back "
              f"{ms['reduce_twice']:6.2f} ms; torch.func.jvp of `v * 1` (the transform, no collective) "
              f"{ms['transform_floor']:6.2f} ms; torch.func.jvp of the all_reduce {ms['reduce_jvp']:6.2f} ms")
        second = ms["reduce_twice"] - ms["reduce_primal"]
        share = ms["reduce_jvp"] - ms["transform_floor"] - ms["reduce_primal"]
        print(f"  tangent's share (jvp - transform - primal collective) {share:6.2f} ms, "
              f"{share / ms['reduce_primal']:4.2f}x the primal's collective")
        print(f"  floor: a second collective on its own costs {second:6.2f} ms, "
              f"{second / ms['reduce_primal']:4.2f}x the first", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in SIZES.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--world-size", type=int, default=2)
    args = parser.parse_args()
    os.environ["TORCH_FWDAD_BENCH_SIZES"] = f"{args.batch},{args.width},{args.runs}"
    results = run_cases("bench_distributed", ["bench_rank"], args.world_size, timeout=600, collective_timeout=300)
    for result in results.values():
        if not result.ok:
            sys.exit("\n".join(result.errors.values()))


if os.environ.get("TORCH_FWDAD_BENCH_SIZES"):  # in a spawned rank: the sizes the parent was given
    SIZES.update(zip(SIZES, map(int, os.environ["TORCH_FWDAD_BENCH_SIZES"].split(","))))

if __name__ == "__main__":
    main()
