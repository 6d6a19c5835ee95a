"""Sparse Jacobians/Hessians (torch_fwdad.sparse_ad): prepared evaluation against the primal.

For the problems of issue 15 this prints, measured side by side in interleaved
rounds with torch.utils.benchmark (fastest block per call, medians beside; float64, one intra-op
thread by default): the primal, a
prepared plan's evaluation eagerly and with compile=True (ratios to the primal; compiled, also as
before: every call through torch.compile's frame, and the direct call after the evaluation's own
guards with inductor's default inlining), preparation
(detection + colouring), colour counts, and the dense torch.func.jacfwd / hessian where it
fits in memory (n <= --dense-max). With --peers, and if jax and asdex import, the same
problems through asdex (and sparsejac for Jacobians), jit-compiled, with their ratios.

    python benchmarks/bench_sparse.py                 # every problem (compiling takes a while)
    python benchmarks/bench_sparse.py --quick         # smaller problems, no compile
    python benchmarks/bench_sparse.py --peers         # add asdex / sparsejac if installed
    python benchmarks/bench_sparse.py --choice        # star vs acyclic Hessians: what method="auto" weighs
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from torch.utils.benchmark import Timer

from torch_fwdad.sparse_ad import Banded, hessian_plan, jacobian_plan
from torch_fwdad.sparse_ad.evaluation.compiled import CompiledOrEager, _DirectCall
from torch_fwdad.sparse_ad.examples import PROBLEMS
from torch_fwdad.sparse_ad.inputs import FlatInputs
from torch_fwdad.sparse_ad.products import hvp_products, jvp_products

SIZES = [
    ("tridiagonal", {"n": 10_000}),
    ("tridiagonal", {"n": 100_000}),
    ("brusselator", {"N": 32}),
    ("laplacian_hessian", {"side": 64}),
    ("arrowhead_hessian", {"n": 3_200}),
    ("burgers_flux", {"n": 100_000}),
]
QUICK_SIZES = [
    ("tridiagonal", {"n": 10_000}),
    ("brusselator", {"N": 16}),
    ("laplacian_hessian", {"side": 32}),
    ("arrowhead_hessian", {"n": 800}),
]


CHOICE_SIZES = [
    ("laplacian_hessian", {"side": 64}),
    ("laplacian_hessian", {"side": 256}),
    ("laplacian_squared_hessian", {"side": 64}),
    ("laplacian_squared_hessian", {"side": 256}),
    ("banded_dense_row_hessian", {"n": 10_000}),
]


#: what best_seconds measures with: wall time, or this thread's CPU time (--clock thread: on a
#: shared machine, the time other processes hold the core is not counted; one intra-op thread,
#: so every contender's work is on this thread)
CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}
clock = CLOCKS["wall"]


OWN_GUARDS = "compiled, evaluation's guards, inductor's inlining"


def best_seconds(call, min_run_time):
    """Fastest block's time per call: on a shared machine, the figure least inflated by other
    processes taking the core (medians are printed too, for the spread)."""
    measurement = Timer("call()", globals={"call": call}, timer=clock).blocked_autorange(min_run_time=min_run_time)
    return min(measurement.times), measurement.median


def plan_for(kind, compile, method="auto"):
    if kind == "hessian":
        return hessian_plan("detect", compile=compile, method=method)
    return jacobian_plan("detect", compile=compile)


def through_torch_compile(call):
    """`call` with the plan's direct graph call off: every products call enters torch.compile's frame."""
    def run():
        _DirectCall.disabled = True
        try:
            return call()
        finally:
            _DirectCall.disabled = False
    return run


def dense_call(func, x, kind):
    return (lambda: torch.func.hessian(func)(x)) if kind == "hessian" else (lambda: torch.func.jacfwd(func)(x))


def bare_products(plan, func, x, kind):
    """The floor of an eager plan: PyTorch's vmap over jvp (jvp of the gradient) with the plan's
    seeds, nothing of ours around it (no decompression, no output)."""
    inputs = FlatInputs.of(x)
    flat_func, x_flat = inputs.flat_function(func), inputs.flatten(x)
    seeds = plan._only_prepared().seeds(x_flat)
    products = hvp_products if kind == "hessian" else jvp_products
    return lambda: products(flat_func, x_flat, seeds)


def run_problem(name, size, args, peers):
    torch._dynamo.reset()  # drop the previous problem's compiled programs
    func, x, kind = PROBLEMS[name](**size)
    row = {"problem": f"{name} {size}", "n": x.numel()}
    start = time.perf_counter()
    eager = plan_for(kind, False)
    eager.prepare(func, x)
    row["prep_s"] = time.perf_counter() - start
    eager(func, x)  # first call: the default check of the detected pattern
    row["colors"], row["kind"], row["nnz"] = eager.num_colors, eager.coloring.kind, eager.pattern.nnz
    row["lower_bound"] = eager.coloring.lower_bound
    calls = {"primal": lambda: func(x), "eager": lambda: eager(func, x),
             "products alone": bare_products(eager, func, x, kind)}
    if name == "tridiagonal":  # the structured form prepares like the detected one (issue 15: it did not)
        banded = jacobian_plan(Banded(1, 1))
        banded(func, x)
        calls["eager Banded(1, 1)"] = lambda: banded(func, x)
    # before: every call takes the full path (validation, lookups, the check decision); after:
    # the plan repeats its last call
    calls["eager, full path"] = lambda: eager._evaluate(func, x)
    if args.compile:
        compiled = plan_for(kind, True)
        compiled(func, x)
        start = time.perf_counter()
        compiled(func, x)  # compiles
        row["compile_s"] = time.perf_counter() - start
        row["compiled_kind"], row["compiled_colors"] = compiled.coloring.kind, compiled.num_colors
        _assert_same(compiled, eager, func, x)
        calls["compiled"] = lambda: compiled(func, x)
        # before: every call through torch.compile's frame (hook, guards, wrappers); after: the
        # plan checks dynamo's guards and calls the compiled graph itself
        calls["compiled, via torch.compile"] = through_torch_compile(lambda: compiled(func, x))
        # before: the direct call checked the guards of the evaluation's frame (mostly torch.func's),
        # and inductor inlined (recomputed per colour) broadcast values such as sin(x)
        CompiledOrEager.function_guards = CompiledOrEager.materialize_broadcast_values = False
        try:
            own_guards = plan_for(kind, True)
            own_guards(func, x)
            own_guards(func, x)
        finally:
            CompiledOrEager.function_guards = CompiledOrEager.materialize_broadcast_values = True
        _assert_same(own_guards, eager, func, x)
        calls[OWN_GUARDS] = lambda: own_guards(func, x)
        direct = next(iter(compiled._only_prepared()._compiled.values())).direct
        row["direct"] = direct is not None
        row["guarded_by"] = "-" if direct is None else ("the function's" if direct.of_function else "the evaluation's")
        if direct is not None:  # the floor of the direct call: dynamo's guards and the graph, nothing of ours
            x_flat = FlatInputs.of(x).flatten(x)
            calls["guards + graph"] = lambda: direct(x_flat)
        if kind == "hessian":  # before: auto took the fewer colours (acyclic where it saves any)
            other = {"star": "acyclic", "acyclic": "star"}[compiled.coloring.kind]
            forced = plan_for(kind, True, other)
            forced(func, x)
            forced(func, x)
            _assert_same(forced, eager, func, x)
            row["forced_colors"], row["forced_kind"] = forced.num_colors, other
            calls[f"compiled {other}"] = lambda: forced(func, x)
        # the floor of any compiled call: guards + runtime wrappers around a one-op program
        trivial = torch.compile(lambda v: v * 2, dynamic=False)
        trivial(x)
        calls["compiled v * 2"] = lambda: trivial(x)
    # interleaved rounds: each contender is measured several times in turn; best block, and median
    times = {label: [] for label in calls}
    for _ in range(args.rounds):
        for label, call in calls.items():
            times[label].append(best_seconds(call, args.min_run_time))
    for label in calls:
        row[label] = min(best for best, _ in times[label])
        row[label + " median"] = sorted(median for _, median in times[label])[len(times[label]) // 2]
    if x.numel() <= args.dense_max:
        dense = dense_call(func, x, kind)
        row["dense"] = best_seconds(dense, args.min_run_time)[0]
        sparse = eager(func, x, output="dense").reshape(-1)
        row["max_error"] = (sparse - dense().reshape(-1)).abs().max().item()
    if peers is not None:
        row.update(peers(name, size, kind))
    return row


def _assert_same(plan, reference, func, x):
    """Exact against the eager plan (itself compared with dense jacfwd/hessian below); scipy
    output, as the dense matrix does not fit for the largest problems."""
    got, expected = plan(func, x, output="scipy"), reference(func, x, output="scipy")
    assert (got.indptr == expected.indptr).all() and (got.indices == expected.indices).all()
    torch.testing.assert_close(torch.from_numpy(got.data), torch.from_numpy(expected.data))


def ratio_line(label, seconds, primal, note=""):
    return f"   {label} {seconds * 1e3:9.3f} ms  = {seconds / primal:7.1f}x primal" + (f" ({note})" if note else "")


def print_row(row):
    primal = row["primal"]
    parts = [f"\n== {row['problem']}: n={row['n']:,} nnz={row['nnz']:,}, {row['colors']} colours ({row['kind']}, "
             f"lower bound {row['lower_bound']}), "
             f"prep {row['prep_s'] * 1e3:.0f} ms",
             f"   primal {primal * 1e3:9.3f} ms (median {row['primal median'] * 1e3:.3f})",
             f"   eager plan    {row['eager'] * 1e3:9.3f} ms  = {row['eager'] / primal:7.1f}x primal"]
    parts.append(f"   floor: PyTorch's vmap(jvp) products alone {row['products alone'] * 1e3:9.3f} ms  = "
                 f"{row['products alone'] / primal:7.1f}x primal")
    if "eager Banded(1, 1)" in row:
        parts.append(f"   eager Banded(1, 1) plan {row['eager Banded(1, 1)'] * 1e3:9.3f} ms  = "
                     f"{row['eager Banded(1, 1)'] / primal:7.1f}x primal")
    parts.append(f"   eager, full path every call {row['eager, full path'] * 1e3:9.3f} ms  = "
                 f"{row['eager, full path'] / primal:7.1f}x primal (before: no repeated last call)")
    if "compiled" in row:
        parts.append(f"   compiled plan {row['compiled'] * 1e3:9.3f} ms  = {row['compiled'] / primal:7.1f}x primal "
                     f"({row['compiled_kind']}; median {row['compiled median'] * 1e3:.3f} ms = "
                     f"{row['compiled median'] / row['primal median']:.1f}x the primal's median; "
                     f"compiling took {row['compile_s']:.1f} s)")
        parts.append(ratio_line("compiled, through torch.compile's frame every call", row["compiled, via torch.compile"],
                                primal, "before: no direct graph call"))
        parts.append(ratio_line("compiled, direct call after the evaluation's guards", row[OWN_GUARDS],
                                primal, "before: not the function's guards alone; sin(x) etc. per colour"))
        if "guards + graph" in row:
            parts.append(ratio_line(f"floor: dynamo's guards ({row['guarded_by']}) + the compiled graph",
                                    row["guards + graph"], primal))
        else:
            parts.append("   (no direct graph call for this function: every call through torch.compile's frame)")
    if "forced_kind" in row:
        label = f"compiled {row['forced_kind']}"
        parts.append(ratio_line(f"{label} plan ({row['forced_colors']} colours)", row[label], primal))
    if "compiled v * 2" in row:
        parts.append(ratio_line("floor: torch.compile'd `v * 2`", row["compiled v * 2"], primal,
                                "a compiled call's fixed cost"))
    if "dense" in row:
        parts.append(f"   dense jacfwd/hessian {row['dense'] * 1e3:9.1f} ms  = {row['dense'] / primal:9.1f}x primal "
                     f"(max |sparse - dense| {row['max_error']:.1e})")
    else:
        parts.append("   dense jacfwd/hessian skipped (n above --dense-max: n x n values)")
    for peer in ("asdex", "sparsejac"):
        if peer in row:
            parts.append(f"   {peer:9s} eval {row[peer] * 1e3:9.3f} ms  = {row[peer] / row[peer + '_primal']:7.1f}x "
                         f"its jit primal ({row[peer + '_primal'] * 1e3:.3f} ms), {row[peer + '_colors']} colours")
    print("\n".join(parts), flush=True)


def summary(rows):
    print("\nplan time / primal; 'before' columns: eager, every call through the full path; compiled, every call"
          " through torch.compile's frame; for Hessians the"
          " other colouring (the old auto took the fewer colours)")
    print("\n| problem | colours (eager / compiled) | primal ms | eager plan (before) | vmap(jvp) alone | "
          "compiled plan (before: evaluation's guards and inlining; through torch.compile) | "
          "compiled, other colouring | guards + graph | "
          "compiled v*2 | asdex | sparsejac |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        p = row["primal"]
        compiled_colors = f" / {row['compiled_colors']} {row['compiled_kind']}" if "compiled_kind" in row else ""
        forced = f"compiled {row.get('forced_kind')}"
        cells = [row["problem"], f"{row['colors']} {row['kind']}{compiled_colors}", f"{p * 1e3:.3f}",
                 f"{row['eager'] / p:.1f}x ({row['eager, full path'] / p:.1f}x)",
                 f"{row['products alone'] / p:.1f}x",
                 f"{row['compiled'] / p:.1f}x ({row[OWN_GUARDS] / p:.1f}x; "
                 f"{row['compiled, via torch.compile'] / p:.1f}x)" if "compiled" in row else "-",
                 f"{row[forced] / p:.1f}x ({row['forced_colors']} {row['forced_kind']})" if forced in row else "-",
                 f"{row['guards + graph'] / p:.1f}x" if "guards + graph" in row else "-",
                 f"{row['compiled v * 2'] / p:.1f}x" if "compiled v * 2" in row else "-"]
        cells += [f"{row[k] / row[k + '_primal']:.1f}x" if k in row else "-" for k in ("asdex", "sparsejac")]
        print("| " + " | ".join(cells) + " |")


def choice_table(args):
    """The measurements behind evaluation/cost.py: products and decompression of the star and the
    acyclic colouring side by side, and the colours the substitution was worth per nnz / n."""
    from torch_fwdad.sparse_ad.evaluation.cost import SUBSTITUTION_COLORS_PER_ROW_NNZ  # noqa: PLC0415
    print(f"model: acyclic when it saves more colours than c * nnz / n, c = {SUBSTITUTION_COLORS_PER_ROW_NNZ} "
          "(eager False, compiled True)")
    for name, size in CHOICE_SIZES:
        func, x, _ = PROBLEMS[name](**size)
        inputs = FlatInputs.of(x)
        flat_func, x_flat = inputs.flat_function(func), inputs.flatten(x).detach()
        for compile in ((False, True) if args.compile else (False,)):
            torch._dynamo.reset()  # drop the previous problem's compiled programs
            calls, prepared = {"primal": lambda: func(x)}, {}
            for method in ("star", "acyclic"):
                plan = hessian_plan("detect", method=method)
                plan(func, x)
                prepared[method] = plan._only_prepared()
                products = prepared[method].products(flat_func, x_flat, None)
                if compile:
                    products = torch.compile(products, dynamic=False)
                compressed = products(x_flat)[0]
                calls[f"{method} products"] = lambda products=products: products(x_flat)
                calls[f"{method} decompression"] = lambda p=prepared[method], c=compressed: p.values(c)
            times = {label: [] for label in calls}
            for _ in range(args.rounds):
                for label, call in calls.items():
                    times[label].append(best_seconds(call, args.min_run_time)[0])
            best = {label: min(t) for label, t in times.items()}
            colors = {m: prepared[m].coloring.num_colors for m in prepared}
            pattern = prepared["star"].pattern
            per_color = (best["star products"] - best["acyclic products"]) / max(colors["star"] - colors["acyclic"], 1)
            extra = best["acyclic decompression"] - best["star decompression"]
            worth = extra / per_color / (pattern.nnz / pattern.shape[0]) if per_color > 0 else float("inf")
            chosen = hessian_plan("detect", compile=compile).prepare(func, x).coloring.kind
            faster = min(("star", "acyclic"), key=lambda m: best[f"{m} products"] + best[f"{m} decompression"])
            print(f"{name} {size} compile={compile}: star {colors['star']} / acyclic {colors['acyclic']} colours, "
                  f"nnz/n {pattern.nnz / pattern.shape[0]:.1f}; primal {best['primal'] * 1e3:.3f} ms; "
                  + ", ".join(f"{label} {best[label] * 1e3:.3f} ms" for label in calls if label != "primal")
                  + f"; substitution worth {worth:.2f} colours per nnz/n; faster here: {faster}, auto takes {chosen}",
                  flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller problems, no compile")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--peers", action="store_true", help="also run asdex / sparsejac (jax) if they import")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--dense-max", type=int, default=5_000)
    parser.add_argument("--choice", action="store_true",
                        help="star vs acyclic Hessians side by side: the figures behind method='auto'")
    parser.add_argument("--only", default=None, help="run problems whose name contains this")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this thread's CPU time (steadier on a shared machine)")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for every contender (default 1: fair and stable on a shared machine)")
    args = parser.parse_args()
    if args.quick:
        args.compile = False
    torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]
    torch.set_default_dtype(torch.float64)
    warnings.filterwarnings("ignore", message=".*batching rule.*")
    peers = None
    if args.peers:
        try:
            from bench_sparse_peers import peer_timings  # noqa: PLC0415 - optional: jax, asdex
            peers = peer_timings
        except ImportError as error:
            print(f"--peers: {error}; running without peers")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float64, compile={args.compile}, "
          f"clock={args.clock}")
    start = time.perf_counter()
    tiny, point, _ = PROBLEMS["tridiagonal"](n=10)
    jacobian_plan("detect")(tiny, point)  # first use of functionalize and the tracer: seconds, once per process
    print(f"warm-up (first detection in this process) {time.perf_counter() - start:.1f} s; prep below is warm")
    if args.choice:
        choice_table(args)
        return
    rows = []
    for name, size in (QUICK_SIZES if args.quick else SIZES):
        if args.only and args.only not in name:
            continue
        rows.append(run_problem(name, size, args, peers))
        print_row(rows[-1])
    summary(rows)


if __name__ == "__main__":
    main()
