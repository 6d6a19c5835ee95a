"""Run a function on N local ranks (gloo, loopback only) with bounded time and symmetric failure.

Used by the multi-process tests and the benchmark. Every rank runs the same list of cases.
What made such runs flaky on a loaded machine, and what this launcher does about each:
- ranks agreed on failures with a gloo collective, so an error that surfaced on one rank
  only (an earlier failed async collective, raised by the next one that waits) left the
  ranks issuing different numbers of collectives, and every later case failed with
  "Connection closed by peer": agreement now goes through the store, never the group;
- after a case that failed anywhere the group may hold a half-finished collective, so
  every rank starts a fresh group for the next case;
- one-time costs (importing the cases, loading forward AD's decompositions) ran between
  two collectives, where a starved rank could leave its peer past the collective timeout:
  they run before the group exists and before the first case;
- a TCP rendezvous on a port found free and released can meet another program's group on
  the same port: the rendezvous is a file store in a fresh directory, and gloo's own
  sockets are bound to the loopback interface;
- importing torch in every rank took most of the run: ranks fork from a server that
  imported it once.
A hung case ends at the group's timeout; the whole run ends at `timeout` seconds, when the
parent kills whatever is left. torch.multiprocessing's spawn has no overall deadline.
"""

from __future__ import annotations

import datetime
import faulthandler
import importlib
import os
import queue as queue_module
import tempfile
import traceback
from dataclasses import dataclass

import torch.multiprocessing as mp

LOOPBACK_INTERFACE = "lo"  # gloo binds its sockets here (127.0.0.1): these groups stay on this machine


@dataclass(frozen=True)
class CaseResult:
    name: str
    errors: dict[int, str]  # rank -> traceback, for the ranks that raised

    @property
    def ok(self) -> bool:
        return not self.errors


def run_cases(module: str, cases: list[str], world_size: int, *, timeout: float = 90.0,
              collective_timeout: float = 20.0) -> dict[str, CaseResult]:
    """Run `module.<case>(rank, world_size)` for every case on `world_size` gloo ranks.

    Returns case name -> CaseResult. A rank that dies or a run that exceeds `timeout`
    raises RuntimeError naming what was still running.
    """
    context = _context(module)
    results = context.Queue()
    with tempfile.TemporaryDirectory(prefix="torch_fwdad_dist_") as directory:
        store_path = os.path.join(directory, "store")
        processes = [
            context.Process(target=_rank_main, args=(rank, world_size, store_path, module, cases, collective_timeout, results), daemon=True)
            for rank in range(world_size)
        ]
        for process in processes:
            process.start()
        try:
            reports = _collect(results, processes, timeout, f"distributed cases {cases} of {module}")
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


def _context(module: str):
    """Ranks fork from one server that imported torch, torch_fwdad and the cases once (an
    import of torch alone took ~35 s of wall time on the loaded 2-core machine); the server
    is started per process and reused by later launches. Forked from a process that has
    run nothing, unlike the caller (which may have started OpenMP threads)."""
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch_fwdad", "torch.distributed._functional_collectives", module])
    return context


def _collect(results, processes, timeout: float, what: str) -> dict[int, list]:
    reports: dict[int, list] = {}
    deadline = _now() + timeout
    while len(reports) < len(processes):
        remaining = deadline - _now()
        if remaining <= 0:
            raise RuntimeError(f"{what} did not finish within {timeout:.0f} s on {len(processes)} ranks; "
                               f"reports of the ranks that finished: {reports}")
        try:
            rank, report = results.get(timeout=min(remaining, 1.0))
            reports[rank] = report
        except queue_module.Empty:
            dead = [r for r, p in enumerate(processes) if p.exitcode not in (None, 0) and r not in reports]
            if dead:
                raise RuntimeError(f"rank(s) {dead} of {what} exited with code(s) "
                                   f"{[processes[r].exitcode for r in dead]} before reporting")
    return reports


def _now() -> float:
    import time

    return time.monotonic()


def _rank_main(rank, world_size, store_path, module, cases, collective_timeout, results):
    import torch.distributed as dist

    os.environ["GLOO_SOCKET_IFNAME"] = LOOPBACK_INTERFACE
    report: list[str | None] = [None] * len(cases)
    try:
        functions = importlib.import_module(module)  # before the group: no peer waits on an import
        _warm_up_forward_ad()
        store = dist.FileStore(store_path, world_size)
        agree_timeout = datetime.timedelta(seconds=4 * collective_timeout)
        _start_group(store, 0, rank, world_size, collective_timeout)
        for i, case in enumerate(cases):
            report[i] = _run_one(getattr(functions, case), rank, world_size, 2 * collective_timeout)
            if _any_rank_failed(store, f"case{i}", rank, world_size, report[i] is not None, agree_timeout):
                report[i] = report[i] or "failed on another rank"
                dist.destroy_process_group()  # it may hold a half-finished collective
                _start_group(store, i + 1, rank, world_size, collective_timeout)
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        error = traceback.format_exc()
        report = [r or f"setup failed: {error}" for r in report]
    finally:
        results.put((rank, report))
        if dist.is_initialized():
            dist.destroy_process_group()


def _start_group(store, generation: int, rank: int, world_size: int, collective_timeout: float) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.PrefixStore(f"group{generation}", store), rank=rank,
                            world_size=world_size, timeout=datetime.timedelta(seconds=collective_timeout))


def _warm_up_forward_ad() -> None:
    """Load what forward AD loads on first use (seconds of CPU on a loaded machine)."""
    import torch
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        fwAD.make_dual(torch.ones(2), torch.ones(2)).sin().sum()
    torch.func.jvp(torch.sin, (torch.ones(2),), (torch.ones(2),))


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


def _any_rank_failed(store, key: str, rank: int, world_size: int, failed: bool, timeout) -> bool:
    """Agree through the store, not the group: a broken group must not break the agreement."""
    store.set(f"{key}/{rank}", "1" if failed else "0")
    keys = [f"{key}/{r}" for r in range(world_size)]
    store.wait(keys, timeout)
    return any(store.get(k) == b"1" for k in keys)
