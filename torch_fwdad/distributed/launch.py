"""Run a function on N local ranks (gloo, 127.0.0.1) with bounded time and symmetric failure.

Used by the multi-process tests and the benchmark. Every rank runs the same list of cases;
each case's error is caught on the rank that raised it, and the ranks then agree (one
all_gather of flags) on which cases failed anywhere, so one failing rank never leaves its
peers waiting. A case that hangs a collective ends at the process group's timeout on the
peer; the whole run ends at `timeout` seconds, when the parent kills whatever is left.
torch.multiprocessing's own spawn has no overall deadline, hence this small launcher.
"""

from __future__ import annotations

import datetime
import faulthandler
import importlib
import os
import queue as queue_module
import socket
import traceback
from dataclasses import dataclass

import torch.multiprocessing as mp

MASTER_ADDR = "127.0.0.1"  # never another address: these groups stay on this machine


@dataclass(frozen=True)
class CaseResult:
    name: str
    errors: dict[int, str]  # rank -> traceback, for the ranks that raised

    @property
    def ok(self) -> bool:
        return not self.errors


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((MASTER_ADDR, 0))
        return sock.getsockname()[1]


def run_cases(module: str, cases: list[str], world_size: int, *, timeout: float = 90.0,
              collective_timeout: float = 20.0) -> dict[str, CaseResult]:
    """Run `module.<case>(rank, world_size)` for every case on `world_size` gloo ranks.

    Returns case name -> CaseResult. A rank that dies or a run that exceeds `timeout`
    raises RuntimeError naming what was still running.
    """
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [
        context.Process(target=_rank_main, args=(rank, world_size, port, module, cases, collective_timeout, results), daemon=True)
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    reports: dict[int, list] = {}
    try:
        deadline = _now() + timeout
        while len(reports) < world_size:
            remaining = deadline - _now()
            if remaining <= 0:
                raise RuntimeError(
                    f"distributed cases {cases} of {module} did not finish within {timeout:.0f} s on "
                    f"{world_size} ranks; reports of the ranks that finished: {reports}"
                )
            try:
                rank, report = results.get(timeout=min(remaining, 1.0))
                reports[rank] = report
            except queue_module.Empty:
                dead = [r for r, p in enumerate(processes) if p.exitcode not in (None, 0) and r not in reports]
                if dead:
                    raise RuntimeError(f"rank(s) {dead} of {module} exited with code(s) {[processes[r].exitcode for r in dead]} before reporting")
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
    return {
        name: CaseResult(name, {rank: reports[rank][i] for rank in reports if reports[rank][i] is not None})
        for i, name in enumerate(cases)
    }


def _now() -> float:
    import time

    return time.monotonic()


def _rank_main(rank, world_size, port, module, cases, collective_timeout, results):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR=MASTER_ADDR, MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    report: list[str | None] = [None] * len(cases)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=collective_timeout))
        functions = importlib.import_module(module)
        for i, case in enumerate(cases):
            report[i] = _run_one(getattr(functions, case), rank, world_size, 2 * collective_timeout)
            if _any_rank_failed(report[i] is not None):
                report[i] = report[i] or "failed on another rank"
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        error = traceback.format_exc()
        report = [r or f"setup failed: {error}" for r in report]
    finally:
        results.put((rank, report))
        if dist.is_initialized():
            dist.destroy_process_group()


def _run_one(function, rank, world_size, stall_after: float) -> str | None:
    # A rank stuck outside gloo (no collective timeout applies) dumps its stacks to stderr.
    faulthandler.dump_traceback_later(stall_after, exit=False)
    try:
        function(rank, world_size)
        return None
    except BaseException:  # noqa: BLE001 - every rank reports its own error
        return traceback.format_exc()
    finally:
        faulthandler.cancel_dump_traceback_later()


def _any_rank_failed(failed: bool) -> bool:
    import torch
    import torch.distributed as dist

    flag = torch.tensor([1.0 if failed else 0.0])
    dist.all_reduce(flag)
    return bool(flag.item())
