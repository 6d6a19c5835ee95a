"""Forward-mode AD through F.scaled_dot_product_attention on CPU: time and peak memory.

Three ways, one run, float32 (medians of torch.utils.benchmark):
  primal      fused SDPA alone (the CPU flash kernel)
  torch_fwdad torch.func.jvp through the fused kernel with torch_fwdad's rule (values only:
              the C++ tile loop when it is built, formulas/_attention_tiles.cpp; the header
              says which ran)
  MATH        torch.func.jvp under sdpa_kernel(SDPBackend.MATH), the usual workaround

Then, at the first length: torch_fwdad with tangents on q only, k only, v only, and the
floor of any rule built from batched matmuls: the primal plus the five matmul units the
full tangent needs (s, ṡ with q̇ and k̇, two products with v), timed bare on
preallocated blocks with nothing else (no exp, no elementwise passes, no allocation),
in the better of the rule's two tilings: cache-sized tiles on worker threads
(cache_tile_sizes) or large blockwise tiles split by intra-op parallelism (tile_sizes).

Peak memory is measured in a fresh subprocess per (method, L) as the rise of the
process's peak RSS (ru_maxrss) over its value after the inputs are built, so the figures
do not depend on what ran before.

--contention: the time table at the first length twice, quiet and then with one busy
process started by this script (a Python loop on one core, stopped when the table is
done), ratios side by side, with the floor measured in the same passes; torch_fwdad
also with its Python tiles (the fallback when the C++ tile loop is not built: in-place
tiles on worker threads), with the blockwise tiles of earlier versions (large tiles,
fresh P and ṡ, on worker threads) and with the Python tiles computed in this thread
(intra-op parallelism in every op), for comparison.
--cache-tiles N: CACHE_TILE_ELEMENTS (scores of one in-place Python tile) for this run;
--cpp-rows N: CPP_TILE_ROWS (query rows of one item of the C++ tile loop).
--cpu-time: process CPU time (all threads summed) instead of wall time: the work done,
which a shared machine's load does not inflate as it does wall time.
Usage: python benchmarks/bench_attention.py [--lengths 1024 4096] [--threads 2] [--contention] [--cpu-time]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils import benchmark


def make_inputs(L, B=2, H=8, E=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    primals = [torch.randn(B, H, L, E, generator=generator) for _ in range(3)]
    tangents = [torch.randn(B, H, L, E, generator=generator) for _ in range(3)]
    return primals, tangents


# torch_fwdad with some of the rule's switches off (module, name): its Python tiles (the
# fallback of the C++ tile loop), the blockwise tiles of earlier versions (on worker threads),
# and Python tiles in this thread (intra-op parallelism in every op)
SWITCHES = {
    "python tiles": [("attention_tiles", "active")],
    "blockwise tiles (before)": [("attention", "USE_CACHE_TILES")],
    "python tiles, one thread": [("attention_tiles", "active"), ("attention", "USE_TILE_WORKERS")],
}


def run(method, primals, tangents):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import torch_fwdad  # noqa: F401  (installs the rules)
    from torch_fwdad.formulas import attention, attention_tiles

    if method == "primal":
        return F.scaled_dot_product_attention(*primals)
    if method == "torch_fwdad":
        return torch.func.jvp(F.scaled_dot_product_attention, tuple(primals), tuple(tangents))
    if method in SWITCHES:
        modules = {"attention": attention, "attention_tiles": attention_tiles.extension}
        switched = [(modules[module], name, getattr(modules[module], name)) for module, name in SWITCHES[method]]
        for module, name, _ in switched:
            setattr(module, name, False)
        try:
            return torch.func.jvp(F.scaled_dot_product_attention, tuple(primals), tuple(tangents))
        finally:
            for module, name, saved in switched:
                setattr(module, name, saved)
    with sdpa_kernel(SDPBackend.MATH):
        return torch.func.jvp(F.scaled_dot_product_attention, tuple(primals), tuple(tangents))


# --cpu-time: process CPU time (all threads summed) instead of wall time: the work a call
# does, whatever share of the cores a busy machine leaves it
CLOCK = {}


def timed(call, min_run_time):
    """Median seconds of call() (torch.utils.benchmark, torch's thread count)."""
    call()  # warm up (lazy initialisation, first allocations)
    timer = benchmark.Timer("call()", globals={"call": call}, num_threads=torch.get_num_threads(), **CLOCK)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def method_time(method, primals, tangents, min_run_time):
    return timed(lambda: run(method, primals, tangents), min_run_time)


def tangent_subsets(primals, tangents, min_run_time):
    """Seconds of torch.func.jvp with tangents on q only, k only, v only (others zero)."""
    import torch_fwdad  # noqa: F401

    def only(i):
        fn = (lambda x: F.scaled_dot_product_attention(*primals[:i], x, *primals[i + 1:]))
        return timed(lambda: torch.func.jvp(fn, (primals[i],), (tangents[i],)), min_run_time)

    return {name: only(i) for i, name in enumerate("qkv")}


def matmul_floor(primals, min_run_time):
    """Seconds of the five bare matmul units of the full tangent: the better of the rule's
    two tilings (blockwise_matmul_units, cache_tile_matmul_units)."""
    return min(blockwise_matmul_units(primals, min_run_time), cache_tile_matmul_units(primals, min_run_time))


def blockwise_matmul_units(primals, min_run_time):
    """Seconds of the five bare matmul units in the blockwise rule's tiles (tile_sizes), in
    this thread (intra-op parallelism), written into preallocated outputs."""
    from torch_fwdad.formulas.attention import tile_sizes

    B, H, L, E = primals[0].shape
    batch, heads, R = tile_sizes(B, H, L, L, torch.get_num_threads())
    q, k, v = (t.flatten(0, 1) for t in primals)
    k_ones, q_ones = (torch.cat([t, t.new_ones(*t.shape[:-1], 1)], -1) for t in (k, q))
    group = batch * heads
    scores, values = torch.empty(group, R, L), torch.empty(group, R, E)

    def units():
        for first in range(0, B * H - group + 1, group):
            m = slice(first, first + group)
            for start in range(0, L - R + 1, R):
                rows = slice(start, start + R)
                torch.bmm(q_ones[m, rows], k_ones[m].mT, out=scores)  # s with −lse
                torch.bmm(q[m, rows], k[m].mT, out=scores)  # q̇ kᵀ
                torch.bmm(q[m, rows], k[m].mT, out=scores)  # q k̇ᵀ
                torch.bmm(scores, v[m], out=values)  # (P ⊙ ṡ) v
                torch.bmm(scores, v[m], out=values)  # P v̇

    covered = (B * H // group) * group * (L // R) * R
    return timed(units, min_run_time) * (B * H * L) / covered


def cache_tile_matmul_units(primals, min_run_time):
    """Seconds of the five bare matmul units in the in-place rule's tiles (cache_tile_sizes):
    s, ṡ ([q̇, q]·[k, k̇]ᵀ) and [ṡ ⊙ P, P]·[v over v̇], written over one buffer a thread,
    on the rule's worker threads when there are several threads."""
    import threading

    from torch_fwdad.formulas import attention

    B, H, L, E = primals[0].shape
    heads, R = attention.cache_tile_sizes(H, L, L)
    q, k, v = (t.flatten(0, 1) for t in primals)
    q2, k2 = torch.cat([q, q], -1), torch.cat([k, k], -1)
    stacked, out = torch.cat([v, v], -2), torch.empty(B * H, L, E)
    tiles = [(slice(m, m + heads), slice(r, r + R)) for m in range(0, B * H - heads + 1, heads)
             for r in range(0, L - R + 1, R)]
    buffers = threading.local()

    def tile(spans):
        m, rows = spans
        if getattr(buffers, "both", None) is None:
            buffers.both = torch.empty(heads, R, 2 * L)
        both = buffers.both
        torch.bmm(q[m, rows], k[m].mT, out=both[..., L:])  # s
        torch.bmm(q2[m, rows], k2[m].mT, out=both[..., :L])  # ṡ: two units
        torch.bmm(both, stacked[m], out=out[m, rows])  # (ṡ ⊙ P) v + P v̇: two units

    def units():
        if torch.get_num_threads() > 1 and attention.USE_TILE_WORKERS:
            attention._run_on_workers(tile, tiles)
        else:
            for spans in tiles:
                tile(spans)

    covered = len(tiles) * heads * R
    return timed(units, min_run_time) * (B * H * L) / covered


def _status_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_rise_mb(call):
    """Peak RSS during call() minus RSS just before it, in MB (run in a fresh process).

    VmHWM, reset to the current RSS first (clear_refs 5): ru_maxrss would carry the
    parent's peak over fork. With MEASURED_ENV, RSS follows the live tensors.
    """
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _status_mb("VmRSS")
    call()
    return _status_mb("VmHWM") - before


# A fixed mmap threshold: every tensor above 64 KB is mapped and unmapped on free, so RSS
# follows the live tensors (glibc's adaptive threshold would keep freed blocks in the heap).
MEASURED_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}


def peak_rss_rise(method, L, B=2, H=8, E=64, threads=None):
    """Child process: peak RSS rise (MB) of one call of `method` at sequence length L."""
    code = (
        "import json, sys, torch; sys.path.insert(0, 'benchmarks'); import bench_attention as b;"
        f"torch.set_num_threads({threads or torch.get_num_threads()});"
        f"p, t = b.make_inputs({L}, {B}, {H}, {E}); import torch_fwdad;"
        f"b.run({method!r}, *b.make_inputs(8, 1, 1, 8));"  # load lazily initialised code first
        f"print(json.dumps(b.peak_rss_rise_mb(lambda: b.run({method!r}, p, t))))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                          env=MEASURED_ENV)
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def one_busy_process(limit_s=600):
    """A Python loop spinning on one core while the block runs; it ends itself after limit_s."""
    loop = f"import time\nend = time.monotonic() + {limit_s}\nwhile time.monotonic() < end: pass"
    busy = subprocess.Popen([sys.executable, "-c", loop])
    try:
        yield
    finally:
        busy.terminate()
        busy.wait(timeout=30)


CONTENTION_METHODS = ("primal", "torch_fwdad", "python tiles", "blockwise tiles (before)", "python tiles, one thread",
                      "MATH")


def tile_loop_line():
    from torch_fwdad.formulas import attention_tiles

    info = attention_tiles.extension.info()
    return f"torch_fwdad's values-only tiles: {info['path']} ({info['reason']})"


def contention_table(L, min_run_time, rounds=3):
    """Medians over `rounds` interleaved passes of each method and of the floor, quiet then loaded."""
    primals, tangents = make_inputs(L)

    def medians():
        times = {m: [] for m in (*CONTENTION_METHODS, "floor")}
        for _ in range(rounds):
            for method in CONTENTION_METHODS:
                times[method].append(method_time(method, primals, tangents, min_run_time))
            times["floor"].append(times["primal"][-1] + matmul_floor(primals, min_run_time))
        return {m: sorted(t)[len(t) // 2] for m, t in times.items()}

    quiet = medians()
    with one_busy_process():
        loaded = medians()
    print(tile_loop_line())
    print(f"L={L}, {torch.get_num_threads()} threads; quiet, then with one busy process (medians of {rounds} passes);"
          " floor: primal + 5 bare matmul units, same passes")
    print(f"{'method':>24} {'quiet ms':>9} {'÷primal':>8} {'÷floor':>7} {'loaded ms':>10} {'÷primal':>8} {'÷floor':>7}"
          f" {'loaded÷quiet ratio':>19}")
    for method in (*CONTENTION_METHODS, "floor"):
        q, lo = quiet[method] / quiet["primal"], loaded[method] / loaded["primal"]
        qf, lf = quiet[method] / quiet["floor"], loaded[method] / loaded["floor"]
        print(f"{method:>24} {quiet[method] * 1e3:>9.1f} {q:>7.2f}x {qf:>6.2f}x {loaded[method] * 1e3:>10.1f}"
              f" {lo:>7.2f}x {lf:>6.2f}x {lo / q:>18.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timing (torch.utils.benchmark)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--contention", action="store_true", help="quiet and loaded ratios side by side")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved passes per method with --contention")
    parser.add_argument("--cache-tiles", type=int, default=None, help="CACHE_TILE_ELEMENTS for this run")
    parser.add_argument("--cpp-rows", type=int, default=None, help="CPP_TILE_ROWS for this run")
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time (all threads) instead of wall time")
    args = parser.parse_args(argv)
    if args.cpu_time:
        CLOCK["timer"] = time.process_time
        print("times below are process CPU time, all threads summed (not wall time)")
    if args.threads:
        torch.set_num_threads(args.threads)
    from torch_fwdad.formulas import attention

    attention.CACHE_TILE_ELEMENTS = args.cache_tiles or attention.CACHE_TILE_ELEMENTS
    attention.CPP_TILE_ROWS = args.cpp_rows or attention.CPP_TILE_ROWS
    if args.contention:
        contention_table(args.lengths[0], args.min_run_time, args.rounds)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; B=2 H=8 E=64 float32, L=S")
    print(tile_loop_line())
    print(f"{'L':>6} {'primal ms':>10} {'fwdad ms':>9} {'MATH ms':>9} {'fwdad/primal':>13} {'MATH/fwdad':>11}"
          f" {'fwdad MB':>9} {'MATH MB':>9}")
    for L in args.lengths:
        primals, tangents = make_inputs(L)
        times = {m: method_time(m, primals, tangents, args.min_run_time) for m in ("primal", "torch_fwdad", "MATH")}
        memory = {m: peak_rss_rise(m, L, threads=args.threads) for m in ("torch_fwdad", "MATH")}
        print(f"{L:>6} {times['primal'] * 1e3:>10.1f} {times['torch_fwdad'] * 1e3:>9.1f} {times['MATH'] * 1e3:>9.1f}"
              f" {times['torch_fwdad'] / times['primal']:>12.2f}x {times['MATH'] / times['torch_fwdad']:>10.2f}x"
              f" {memory['torch_fwdad']:>9.0f} {memory['MATH']:>9.0f}")
    L = args.lengths[0]
    primals, tangents = make_inputs(L)
    primal = method_time("primal", primals, tangents, args.min_run_time)
    subsets = tangent_subsets(primals, tangents, args.min_run_time)
    floor = primal + matmul_floor(primals, args.min_run_time)
    full = {m: method_time(m, primals, tangents, args.min_run_time) for m in ("torch_fwdad", "python tiles")}
    print(f"L={L}, primal {primal * 1e3:.1f} ms; torch_fwdad ÷ primal with a tangent on "
          + ", ".join(f"{name} only {t / primal:.2f}x" for name, t in subsets.items()))
    print(f"floor for q, k, v tangents: primal + 5 bare matmul units = {floor * 1e3:.1f} ms"
          f" = {floor / primal:.2f}x the primal; torch_fwdad {full['torch_fwdad'] / floor:.2f}x the floor,"
          f" its Python tiles {full['python tiles'] / floor:.2f}x")


if __name__ == "__main__":
    main()
