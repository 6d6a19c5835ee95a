"""Forward mode under torch.compile against eager, on cdist and attention (CPU, float32).

For each op, one run with torch.utils.benchmark (medians, side by side):
  primal        the op alone, eager and compiled
  jvp           torch.func.jvp through the op (torch_fwdad's rule), eager and compiled
and the ratios JVP ÷ primal in each mode. The compiled functions are compiled and warmed
up before timing, so compile time is not in the figures (it is printed separately).
Usage: python benchmarks/bench_compile.py [--backend inductor] [--points 1024] [--length 256]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils import benchmark

import torch_fwdad  # noqa: F401  (installs the rules)


def cdist_case(points: int, dim: int):
    g = torch.Generator().manual_seed(0)
    x, y, t = (torch.randn(points, dim, generator=g) for _ in range(3))
    return (lambda: torch.cdist(x, y)), (lambda: torch.func.jvp(lambda a: torch.cdist(a, y), (x,), (t,)))


def attention_case(length: int, batch: int = 2, heads: int = 8, dim: int = 64):
    g = torch.Generator().manual_seed(0)
    q, k, v, tq, tk, tv = (torch.randn(batch, heads, length, dim, generator=g) for _ in range(6))
    return ((lambda: F.scaled_dot_product_attention(q, k, v)),
            (lambda: torch.func.jvp(F.scaled_dot_product_attention, (q, k, v), (tq, tk, tv))))


def compiled(fn, backend: str):
    compiled_fn = torch.compile(fn, backend=backend)
    start = time.perf_counter()
    compiled_fn()  # compile and warm up
    return compiled_fn, time.perf_counter() - start


def median(fn, label: str, sub_label: str, description: str, min_run_time: float):
    timer = benchmark.Timer("fn()", globals={"fn": fn}, label=label, sub_label=sub_label,
                            description=description, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time)


def report(name: str, primal, jvp, backend: str, min_run_time: float) -> None:
    primal_c, primal_compile = compiled(primal, backend)
    jvp_c, jvp_compile = compiled(jvp, backend)
    primal(), jvp()  # warm up eager
    rows = {}
    for sub_label, eager_fn, compiled_fn in (("primal", primal, primal_c), ("jvp", jvp, jvp_c)):
        rows[sub_label] = (median(eager_fn, name, sub_label, "eager", min_run_time).median,
                           median(compiled_fn, name, sub_label, backend, min_run_time).median)
    (pe, pc), (je, jc) = rows["primal"], rows["jvp"]
    print(f"{name}  ({torch.get_num_threads()} threads, compile backend {backend})")
    print(f"  {'':10s} {'eager':>12s} {'compiled':>12s}")
    print(f"  {'primal':10s} {pe * 1e3:10.3f}ms {pc * 1e3:10.3f}ms")
    print(f"  {'jvp':10s} {je * 1e3:10.3f}ms {jc * 1e3:10.3f}ms")
    print(f"  {'jvp/primal':10s} {je / pe:11.2f}x {jc / pc:11.2f}x   compiled jvp / eager jvp = {jc / je:.2f}")
    print(f"  compile + first call: primal {primal_compile:.1f}s, jvp {jvp_compile:.1f}s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--min-run-time", type=float, default=1.0)
    args = parser.parse_args(argv)
    report(f"cdist {args.points}x{args.points}, dim {args.dim}", *cdist_case(args.points, args.dim), args.backend, args.min_run_time)
    report(f"attention B=2 H=8 L=S={args.length} E=64", *attention_case(args.length), args.backend, args.min_run_time)


if __name__ == "__main__":
    main()
