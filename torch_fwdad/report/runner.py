"""Run report tasks in worker processes, one op's crash or hang never stopping the others.

Each of --jobs threads drives one worker process and feeds it tasks from a shared queue,
every "without" task before every "with" task: a worker serves one mode, so each thread
replaces its worker once. A task that times out or kills its worker is recorded as an
error; the worker is replaced and the remaining tasks go on.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

from .status import ERROR, first_line
from .worker import BOOTSTRAP

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../torch_fwdad

STARTUP_TIMEOUT_S = 300  # importing torch and op_db on a loaded machine


@dataclass(frozen=True)
class Task:
    part: str  # "opinfo", "table", "second_order", "modules" or "probe"
    name: str
    mode: str  # "with" or "without"
    samples: int = 3
    column: str = "forward"  # what is checked of the entry: a column of its part's table

    def as_json(self) -> str:
        return json.dumps({"part": self.part, "name": self.name, "mode": self.mode, "samples": self.samples,
                           "column": self.column})


class WorkerLost(Exception):
    """The worker died or stopped answering; the message is the task's error detail."""


class Worker:
    def __init__(self, mode: str, memory_mb: int, preload_opinfo: bool):
        self.mode = mode
        self.log = tempfile.TemporaryFile(mode="w+b")  # the worker's stderr, for crash details
        command = [sys.executable, "-c", BOOTSTRAP, PACKAGE_DIR, mode, "--memory-mb", str(memory_mb)]
        self.process = subprocess.Popen(
            command + (["--preload-opinfo"] if preload_opinfo else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
        )
        try:
            self._read_line(STARTUP_TIMEOUT_S, "starting")
        except WorkerLost:
            self.close()
            raise

    def run(self, task: Task, timeout_s: float) -> dict:
        try:
            self.process.stdin.write((task.as_json() + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            raise WorkerLost(self._death("before the task")) from None
        return self._read_line(timeout_s, f"{task.part} {task.name} {task.column}")

    def _read_line(self, timeout_s: float, doing: str) -> dict:
        readable, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not readable:
            self.close()
            raise WorkerLost(f"timed out after {timeout_s:g} s")
        line = self.process.stdout.readline()
        if not line:
            raise WorkerLost(self._death(doing))
        return json.loads(line)

    def _death(self, doing: str) -> str:
        code = self.process.wait()
        cause = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"worker crashed ({cause}) while {doing}{self._last_words()}"

    def _last_words(self) -> str:
        self.log.seek(0)
        lines = [line for line in self.log.read().decode(errors="replace").splitlines() if line.strip()]
        return f": {first_line(lines[-1])}" if lines else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # our own child, by its pid
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.log.close()


def run_tasks(tasks, *, jobs: int, timeout_s: float, memory_mb: int, on_result=None) -> dict[Task, dict]:
    """Task -> {"status", "detail", "seconds"} for every task, crashes and hangs included."""
    pending: queue.Queue = queue.Queue()
    for task in sorted(tasks, key=lambda t: t.mode != "without"):  # stable: order kept within a mode
        pending.put(task)
    preload_opinfo = any(task.part in ("opinfo", "second_order") for task in tasks)
    results: dict[Task, dict] = {}
    cannot_start: dict[str, str] = {}  # mode -> why its worker died while starting
    lock = threading.Lock()

    def record(task, result):
        with lock:
            results[task] = result
            if on_result:
                on_result(task, result)

    def drive():
        worker = None
        while True:
            try:
                task = pending.get_nowait()
            except queue.Empty:
                break
            if task.mode in cannot_start:  # e.g. torch_fwdad itself fails to import: fail fast
                record(task, {"status": ERROR, "detail": cannot_start[task.mode], "seconds": None})
                continue
            if worker and worker.mode != task.mode:
                worker.close()
                worker = None
            try:
                worker = worker or Worker(task.mode, memory_mb, preload_opinfo)
            except WorkerLost as lost:
                cannot_start[task.mode] = f"no worker could start: {lost}"
                record(task, {"status": ERROR, "detail": cannot_start[task.mode], "seconds": None})
                continue
            try:
                record(task, worker.run(task, timeout_s))
            except WorkerLost as lost:
                record(task, {"status": ERROR, "detail": str(lost), "seconds": None})
                if worker:
                    worker.close()
                worker = None
        if worker:
            worker.close()

    threads = [threading.Thread(target=drive, daemon=True) for _ in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def default_memory_mb() -> int:
    return int(os.environ.get("TORCH_FWDAD_REPORT_MEMORY_MB", 6144))
