"""Engine costs, measured side by side in one run with torch.utils.benchmark.

1. cdist JVP (primal + tangent) time / primal cdist time, 2048 x 2048 points, dim 64, float32.
2. One input dual / both inputs dual: the saving of per-input formulas (no work for
   inputs without tangents). For cdist the cost is in [P, R]-sized passes that every
   tangent shares, so the saving shows on a per-input entry: a dilated convolution,
   whose input and weight terms are separate kernel calls.
3. Per-call overhead without a tangent: a tiny cdist outside any dual level, and inside one
   with no tangent on the arguments, on torch_fwdad's two paths (the C++ no-tangent test of
   engine/_fast_path.cpp where it is built, the pure-Python kernels), against the same call
   with torch_fwdad disabled (PyTorch's own kernel) and against a bare Python kernel that
   only forwards (the floor of any kernel written in Python; inside a level it also unpacks
   each tensor argument, the cheapest tangent test Python has).
4. Per-call overhead with a tangent: the same tiny cdist with a tangent on x, through
   torch.autograd.forward_ad and torch.func.jvp, against a bare Python kernel that runs the
   same rule with nothing around it (unpack each argument, the upstream kernel on the
   primals, the rule, `_make_dual`): what the engine adds to a rule, per call.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import timeit
import warnings

import torch
from torch.utils.benchmark import Timer

import torch_fwdad


# --timer cpu: per-thread CPU time instead of wall time, so that time spent descheduled on a
# busy machine is not counted (cache and frequency effects of other processes still are).
TIMERS = {"wall": timeit.default_timer, "cpu": time.thread_time}
_timer = TIMERS["wall"]


def median_seconds(stmt: str, env: dict, min_run_time: float) -> float:
    return Timer(stmt, globals=env, timer=_timer).blocked_autorange(min_run_time=min_run_time).median


def jvp_ratios(points: int, dim: int, min_run_time: float) -> None:
    x, y, tx, ty = (torch.randn(points, dim) for _ in range(4))
    env = {"torch": torch, "x": x, "y": y, "tx": tx, "ty": ty}
    primal = median_seconds("torch.cdist(x, y)", env, min_run_time)
    both = median_seconds("torch.func.jvp(torch.cdist, (x, y), (tx, ty))", env, min_run_time)
    one = median_seconds("torch.func.jvp(lambda a: torch.cdist(a, y), (x,), (tx,))", env, min_run_time)
    print(f"cdist {points}x{points} points, dim {dim}, float32, {torch.get_num_threads()} threads")
    print(f"  primal                     {primal * 1e3:8.2f} ms")
    print(f"  jvp, both inputs dual      {both * 1e3:8.2f} ms   jvp / primal = {both / primal:.2f}x")
    print(f"  jvp, one input dual        {one * 1e3:8.2f} ms   one-dual / both-dual = {one / both:.2f}")


def partial_dual_saving(min_run_time: float) -> None:
    conv = torch.ops.aten.slow_conv_dilated2d.default
    x, w = torch.randn(8, 16, 64, 64), torch.randn(32, 16, 3, 3)
    env = {"torch": torch, "x": x, "w": w, "tx": torch.randn_like(x), "tw": torch.randn_like(w),
           "conv": lambda a, b: conv(a, b, [3, 3], None, [1, 1], [2, 2], [2, 2])}
    primal = median_seconds("conv(x, w)", env, min_run_time)
    both = median_seconds("torch.func.jvp(conv, (x, w), (tx, tw))", env, min_run_time)
    one = median_seconds("torch.func.jvp(lambda a: conv(a, w), (x,), (tx,))", env, min_run_time)
    print("slow_conv_dilated2d, input 8x16x64x64, weight 32x16x3x3, dilation 2, float32")
    print(f"  primal                     {primal * 1e3:8.2f} ms")
    print(f"  jvp, both inputs dual      {both * 1e3:8.2f} ms   jvp / primal = {both / primal:.2f}x")
    print(f"  jvp, input dual only       {one * 1e3:8.2f} ms   one-dual / both-dual = {one / both:.2f}")


def fast_path_overhead(min_run_time: float, rounds: int = 3) -> None:
    """Plain PyTorch, the floors of any Python kernel, and torch_fwdad's Python and C++
    paths outside / inside a dual level, interleaved `rounds` times; the best round of each
    is printed (the one least disturbed by other processes).

    The floor is a bare kernel on the same key that only forwards to the captured upstream
    kernel: what the dispatcher's round trip through Python costs before any test is made.
    The in-level floor adds one `_unpack_dual` per tensor argument, the cheapest query for a
    tangent that Python has: no kernel written in Python can answer "no tangent" for less.
    The C++ path (engine/_fast_path.cpp) is measured only where it is built.
    """
    env = {"torch": torch, "x": torch.randn(4, 3), "y": torch.randn(5, 3)}
    op = torch.ops.aten._cdist_forward.default
    cpp = torch_fwdad.engine_info()["built"]
    paths = ("python", "c++") if cpp else ("python",)
    names = ["plain", "plain in level", "floor", "in-level floor"]
    names += [f"{path}{where}" for path in paths for where in (" no level", " in level")]
    times: dict[str, list[float]] = {name: [] for name in names}

    def measure(name: str, in_level: bool = False) -> None:
        with torch.autograd.forward_ad.dual_level() if in_level else contextlib.nullcontext():
            times[name].append(median_seconds("torch.cdist(x, y)", env, min_run_time))

    try:
        for _ in range(rounds):
            for path in paths:
                torch_fwdad.engine.use_python_path(path == "python")
                measure(f"{path} no level")
                measure(f"{path} in level", in_level=True)
            torch_fwdad.disable()
            try:
                measure("plain")
                measure("plain in level", in_level=True)
                with bare_forwarding_kernel(op):
                    measure("floor")
                with bare_forwarding_kernel(op, unpack_tensor_args=True):
                    measure("in-level floor", in_level=True)
            finally:
                torch_fwdad.enable()
    finally:
        if cpp:
            torch_fwdad.engine.use_python_path(False)
    best = {name: min(times[name]) for name in names}
    clock = "thread CPU time" if _timer is TIMERS["cpu"] else "wall time"
    print(f"no-tangent path, cdist 4x3 by 5x3, {torch.get_num_threads()} threads, {clock}, best of {rounds} "
          f"rounds; added = over plain PyTorch at the same level")
    if not cpp:
        print(f"  (C++ path not measured: {torch_fwdad.engine_info()['reason']})")
    print(f"  {'':34s}{'no dual level':>22s}{'in dual level, no tangent':>30s}")
    for label, outside, inside in (
        ("plain PyTorch", "plain", "plain in level"),
        ("bare Python kernel (floor)", "floor", "in-level floor"),
        ("torch_fwdad, Python path", "python no level", "python in level"),
        ("torch_fwdad, C++ path", "c++ no level", "c++ in level"),
    ):
        if outside not in best:
            continue
        cells = [f"{best[name] * 1e6:7.2f} us ({(best[name] - best[base]) * 1e6:+6.2f})"
                 for name, base in ((outside, "plain"), (inside, "plain in level"))]
        print(f"  {label:34s}{cells[0]:>22s}{cells[1]:>30s}")
    print("  (the in-level floor also unpacks each tensor argument: the cheapest Python test for a tangent)")


@contextlib.contextmanager
def bare_forwarding_kernel(op, unpack_tensor_args: bool = False):
    """A kernel that only forwards to the captured upstream one; with `unpack_tensor_args`,
    it first looks for a tangent on each argument at level 0 (the call must have none)."""
    upstream = torch.library.get_kernel(op, "AutogradCPU").call_boxed
    unpack = torch._C._VariableFunctions._unpack_dual

    def forward(keyset, *args, **kwargs):
        return upstream(keyset, *args, **kwargs)

    def look_then_forward(keyset, *args, **kwargs):
        for arg in args:
            if isinstance(arg, torch.Tensor) and unpack(arg, 0)[1] is not None:
                raise RuntimeError("the in-level floor is measured without tangents")
        return upstream(keyset, *args, **kwargs)

    with autograd_kernel(op, look_then_forward if unpack_tensor_args else forward):
        yield


@contextlib.contextmanager
def autograd_kernel(op, kernel):
    """`kernel` on `op`'s Autograd key while the block runs."""
    library = torch.library.Library(op.namespace, "IMPL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Overriding a previously registered kernel"
        library.impl(op, kernel, "Autograd", with_keyset=True)
    try:
        yield
    finally:
        library._destroy()


def tangent_path_overhead(min_run_time: float, rounds: int = 3) -> None:
    """torch_fwdad against the bare kernel of `bare_rule_kernel` on a call with a tangent,
    inside a dual level and under torch.func.jvp, interleaved `rounds` times (best round)."""
    x, y, tx = torch.randn(4, 3), torch.randn(5, 3), torch.randn(4, 3)
    op = torch.ops.aten._cdist_forward.default
    rule = torch_fwdad.engine.registry.rule_of(op)
    stmts = {"forward_ad": "torch.cdist(dual, y)",
             "torch.func.jvp": "torch.func.jvp(lambda a: torch.cdist(a, y), (x,), (tx,))"}
    times: dict[tuple[str, str], list[float]] = {}

    def measure(kernel: str) -> None:
        with torch.autograd.forward_ad.dual_level():
            env = {"torch": torch, "x": x, "y": y, "tx": tx,
                   "dual": torch.autograd.forward_ad.make_dual(x, tx)}
            times.setdefault((kernel, "forward_ad"), []).append(
                median_seconds(stmts["forward_ad"], env, min_run_time))
        times.setdefault((kernel, "torch.func.jvp"), []).append(
            median_seconds(stmts["torch.func.jvp"], env, min_run_time))

    for _ in range(rounds):
        measure("torch_fwdad")
        torch_fwdad.disable()
        try:
            with bare_rule_kernel(op, rule):
                measure("floor")
        finally:
            torch_fwdad.enable()
    best = {key: min(values) for key, values in times.items()}
    clock = "thread CPU time" if _timer is TIMERS["cpu"] else "wall time"
    print(f"tangent path, cdist 4x3 by 5x3 with a tangent on x, {torch.get_num_threads()} threads, {clock}, "
          f"best of {rounds} rounds; added = over the bare kernel running the same rule")
    print(f"  {'':34s}{'forward_ad':>22s}{'torch.func.jvp':>22s}")
    for label, kernel in (("bare Python kernel + rule (floor)", "floor"), ("torch_fwdad", "torch_fwdad")):
        cells = [f"{best[kernel, api] * 1e6:7.2f} us ({(best[kernel, api] - best['floor', api]) * 1e6:+6.2f})"
                 for api in stmts]
        print(f"  {label:34s}{cells[0]:>22s}{cells[1]:>22s}")


@contextlib.contextmanager
def bare_rule_kernel(op, rule):
    """A kernel that runs `rule` with nothing around it: unpack every tensor argument at the
    current level, run the upstream kernel on the primals, compute and attach the tangent. No
    checks, no forward-over-reverse bookkeeping: the floor of any engine written in Python."""
    upstream = torch.library.get_kernel(op, "AutogradCPU").call_boxed
    unpack, make_dual = torch._C._VariableFunctions._unpack_dual, torch._C._VariableFunctions._make_dual

    def kernel(keyset, *args):
        level = torch.autograd.forward_ad._current_level
        pairs = [unpack(a, level) if isinstance(a, torch.Tensor) else (a, None) for a in args]
        primals, tangents = tuple(p for p, _ in pairs), tuple(t for _, t in pairs)
        output = upstream(keyset, *primals)
        if all(t is None for t in tangents):
            return output
        return make_dual(output, rule(primals, tangents, output), level)

    with autograd_kernel(op, kernel):
        yield


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--min-run-time", type=float, default=2.0)
    parser.add_argument("--timer", choices=sorted(TIMERS), default="wall")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the overhead table (3.)")
    parser.add_argument("--overhead-only", action="store_true", help="only the per-call overheads (3. and 4.)")
    args = parser.parse_args(argv)
    global _timer
    _timer = TIMERS[args.timer]
    if args.overhead_only:
        fast_path_overhead(args.min_run_time, args.rounds)
        tangent_path_overhead(args.min_run_time, args.rounds)
        return
    jvp_ratios(args.points, args.dim, args.min_run_time)
    partial_dual_saving(args.min_run_time)
    fast_path_overhead(args.min_run_time, args.rounds)
    tangent_path_overhead(args.min_run_time, args.rounds)


if __name__ == "__main__":
    main()
