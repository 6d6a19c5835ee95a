"""Cost of the `when: outer_derivative` overrides on native_layer_norm and native_batch_norm,
measured side by side in one run with torch.utils.benchmark (plain PyTorch = torch_fwdad
disabled, the floor).

1. No tangent: F.layer_norm / F.batch_norm outside any dual level (the C++ no-tangent
   test where it is built).
2. A tangent, nothing differentiating it (forward_ad on an input that does not require
   grad): the override evaluates the condition and hands PyTorch its kernel unchanged.
3. A tangent differentiated by reverse mode (x requires grad): the corrected formula
   (statistics recomputed with differentiable ops) against upstream's formula (wrong there,
   the floor of what it costs), forward with the tangent, then forward + backward through it.
"""

from __future__ import annotations

import argparse
import time
import timeit

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.utils.benchmark import Compare, Timer

import torch_fwdad


def norm_call(op: str, x, w, b):
    if op == "layer_norm":
        return F.layer_norm(x, x.shape[-1:], w, b)
    return F.batch_norm(x, None, None, w, b, training=True)


def tangent_of(op, dual, w, b):
    return fwAD.unpack_dual(norm_call(op, dual, w, b)).tangent


def backward_through_tangent(op, dual, x, w, b):
    torch.autograd.grad(tangent_of(op, dual, w, b).square().sum(), x)


def cases(small: bool):
    """(row, statement, globals); the duals are made once, inside the one dual level main opens."""
    shapes = {"layer_norm": ((8, 64), (256, 1024)), "batch_norm": ((8, 16, 8), (64, 64, 256))}
    for op, (tiny, medium) in shapes.items():
        for shape, requires_grad in ((tiny, False), (tiny if small else medium, True)):
            channels = shape[-1] if op == "layer_norm" else shape[1]
            x = torch.randn(shape).requires_grad_(requires_grad)
            env = {"op": op, "x": x, "dual": fwAD.make_dual(x, torch.randn(shape)), "w": torch.randn(channels),
                   "b": torch.randn(channels), "norm_call": norm_call, "tangent_of": tangent_of,
                   "backward_through_tangent": backward_through_tangent}
            if not requires_grad:
                yield f"{op} {shape}: no tangent", "norm_call(op, x, w, b)", env
                yield f"{op} {shape}: tangent, no outer derivative", "tangent_of(op, dual, w, b)", env
            else:
                yield f"{op} {shape}, x requires grad: tangent", "tangent_of(op, dual, w, b)", env
                yield f"{op} {shape}, x requires grad: tangent + backward through it", \
                    "backward_through_tangent(op, dual, x, w, b)", env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-run-time", type=float, default=0.5)
    parser.add_argument("--small", action="store_true", help="tiny shapes only (smoke run)")
    parser.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                        help="cpu: this thread's CPU time, not counting time descheduled on a busy machine")
    args = parser.parse_args()
    timer_function = time.thread_time if args.timer == "cpu" else timeit.default_timer
    results = []
    fwAD.enter_dual_level()
    try:
        for row, stmt, env in cases(args.small):
            for enabled in (False, True):  # alternating per row, so that drifting load hits both alike
                (torch_fwdad.enable if enabled else torch_fwdad.disable)()
                label = "torch_fwdad" if enabled else "plain PyTorch (floor)"
                exec(stmt, env)  # warm up (first-call caches of upstream's formula)
                timer = Timer(stmt, globals=env, label="outer_derivative overrides", sub_label=row, description=label,
                              timer=timer_function)
                results.append(timer.blocked_autorange(min_run_time=args.min_run_time))
    finally:
        torch_fwdad.enable()
        fwAD.exit_dual_level()
    Compare(results).print()
    by_key = {(r.task_spec.sub_label, r.task_spec.description): r for r in results}
    print(f"{torch.get_num_threads()} threads, {args.timer} timer. Medians (IQR) in us; ratio torch_fwdad / plain "
          "PyTorch (the floor). With x requiring grad torch_fwdad's tangent is exact, upstream's is not.")
    for sub_label in dict.fromkeys(r.task_spec.sub_label for r in results):
        plain, ours = by_key[(sub_label, "plain PyTorch (floor)")], by_key[(sub_label, "torch_fwdad")]
        print(f"  {sub_label:72s} {plain.median * 1e6:9.1f} ({plain.iqr * 1e6:7.1f})  "
              f"{ours.median * 1e6:9.1f} ({ours.iqr * 1e6:7.1f})  {ours.median / plain.median:5.2f}x")

if __name__ == "__main__":
    main()
