"""The worker process: runs report tasks of one mode one after another, one JSON line each.

Started by runner.py through BOOTSTRAP, it reads tasks (JSON lines) on stdin and writes
results (JSON lines) on its original stdout; anything the ops print goes to stderr. It
caps its address space before it runs any task, so an op that allocates without bound
fails with an out-of-memory error instead of taking the machine down.

A "without" worker imports torch_fwdad like any user and calls `torch_fwdad.disable()`,
which restores every kernel torch_fwdad replaced (forward mode raises PyTorch's own
errors again): the report, the table readers and the sample generators load while the
dispatcher is plain PyTorch's. tests/test_report.py checks that a "without" worker sees
no rule of ours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings

from .status import ERROR, EXCLUDED, NO_SAMPLES, PASS, classify

def _active_rules() -> tuple[str, str]:
    import torch_fwdad

    return PASS, f"{len(torch_fwdad.registered_ops())} rules active"


# Fake ops for the tests of crash isolation (what a misbehaving kernel can do to a process),
# and of the modes ("rules": how many of torch_fwdad's rules are active in the worker).
PROBES = {
    "pass": lambda: (PASS, "probe"),
    "crash": lambda: os.abort(),
    "exit": lambda: os._exit(3),
    "hang": lambda: time.sleep(10**6),
    "memory": lambda: (PASS, str(len(bytearray(1 << 40)))),  # 1 TiB
    "rules": _active_rules,
}


def limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# argv[1]: the torch_fwdad package directory the report runs from, so the worker imports
# that copy whatever the current directory holds.
BOOTSTRAP = """
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
from torch_fwdad.report.worker import main
sys.exit(main(sys.argv[2:]))
"""


def enter_mode(mode: str) -> None:
    """`import torch_fwdad` installs every rule; "without" takes them all off again."""
    import torch_fwdad

    if mode == "without":
        torch_fwdad.disable()
    if torch_fwdad.is_enabled() != (mode == "with"):
        raise RuntimeError(f"worker for '{mode}' torch_fwdad has the package {'en' if torch_fwdad.is_enabled() else 'dis'}abled")


def check_table_entry(name: str, n_samples: int) -> tuple[str, str]:
    """Our sample generators for a derivatives-table gap, through the check matrix's gradcheck."""
    import itertools

    import torch

    from torch_fwdad.engine.upstream import resolve_overload
    from torch_fwdad.testing import expected_failure, sample_registry
    from torch_fwdad.testing.checks import CHECKS

    from .table import derivatives_table

    reach = derivatives_table()[name].out_of_reach
    if reach:
        return EXCLUDED, f"out of reach: {reach}"
    if not torch._C._dispatch_has_computed_kernel_for_dispatch_key(name, "CPU"):
        return EXCLUDED, "no CPU kernel in this build (CUDA or another backend only); the report checks on CPU"
    source = sample_registry().get(name)
    if source is None:
        return NO_SAMPLES, "no sample generator in torch_fwdad/testing/samples"
    op = resolve_overload(name)
    if op is None:
        return ERROR, "overload missing from this torch"
    # Finite differences in float64, unless they cannot judge this op (random,
    # straight-through: the reason is with the entry's samples), or the kernel
    # has no float64 CPU path (float32-only fallbacks): then PyTorch's own backward,
    # <J t, u> = <t, J^T u>, with float32 tolerances where the sample is float32.
    default = "jvp_vjp" if expected_failure(name, "gradcheck") else "gradcheck"
    checked, how = 0, {}
    for dtype in source.dtypes:
        check = default if dtype in (torch.float64, torch.complex128) else "jvp_vjp"
        for index, sample in enumerate(itertools.islice(source.generate(dtype, "cpu"), n_samples)):
            if expected_failure(name, check, sample):
                continue
            try:
                CHECKS[check](op, sample)
            except Exception as error:  # noqa: BLE001 - every failure is a finding of the report
                status, detail = classify(error)
                return status, f"{str(dtype).removeprefix('torch.')} sample {index} ({sample.desc}, {check}): {detail}"
            checked += 1
            how.setdefault((dtype, check), 0)
            how[(dtype, check)] += 1
    if checked == 0:
        return NO_SAMPLES, "every sample is an expected failure (torch_fwdad/testing/samples): nothing measured"
    parts = []
    for (dtype, check), count in how.items():
        dtype_name = str(dtype).removeprefix("torch.")
        if check == "gradcheck":
            parts.append(f"{count} {dtype_name} samples against finite differences")
        elif dtype in (torch.float64, torch.complex128):
            parts.append(f"{count} {dtype_name} samples against PyTorch's backward (finite differences cannot judge it: "
                         f"{expected_failure(name, 'gradcheck')})")
        else:
            parts.append(f"{count} {dtype_name} samples against PyTorch's backward, <J t, u> = <t, J^T u> with "
                         f"{dtype_name} tolerances (no float64 kernel on CPU)")
    covers = f"; torch covers it without a formula of ours ({source.upstream_covers})" if source.upstream_covers else ""
    return PASS, "; ".join(parts) + covers


def run_task(task: dict) -> tuple[str, str]:
    import torch

    torch.manual_seed(0)  # samples are random; the same task gives the same samples
    part, name = task["part"], task["name"]
    if part == "probe":
        return PROBES[name]()
    if part == "opinfo":
        from .opinfo import check

        return check(name, task["samples"])
    if part == "second_order":
        from . import second_order

        return second_order.check(name, task["column"], task["samples"])
    if part == "modules":
        from . import modules

        return modules.check(name, task["column"])
    return check_table_entry(name, task["samples"])


def answer(task: dict) -> dict:
    start = time.perf_counter()
    try:
        status, detail = run_task(task)
    except MemoryError:
        status, detail = ERROR, "out of memory (MemoryError under the worker's memory limit)"
    except Exception as error:  # noqa: BLE001 - an op that breaks its samples is a finding too
        status, detail = classify(error)
    return {"status": status, "detail": detail, "seconds": round(time.perf_counter() - start, 3)}


def serve(protocol, mode: str, preload_opinfo: bool) -> None:
    import torch

    torch.set_num_threads(1)  # --jobs N processes share the cores
    warnings.simplefilter("ignore")
    enter_mode(mode)
    if preload_opinfo:  # op_db takes seconds to import: not inside the first task's timeout
        from .opinfo import opinfos

        opinfos()
    protocol.write(json.dumps({"ready": True}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        if line.strip():
            protocol.write(json.dumps(answer(json.loads(line))) + "\n")
            protocol.flush()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="torch_fwdad report worker")
    parser.add_argument("mode", choices=("with", "without"))
    parser.add_argument("--memory-mb", type=int, default=0, help="address-space limit; 0 for none")
    parser.add_argument("--preload-opinfo", action="store_true")
    args = parser.parse_args(argv)
    if args.memory_mb:
        limit_memory(args.memory_mb)
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # prints of ops and of C++ kernels must not corrupt the protocol
    sys.stdout = sys.stderr
    serve(protocol, args.mode, args.preload_opinfo)
    return 0
