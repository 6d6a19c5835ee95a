"""Progress of a report run: a bar on a terminal, one plain line per finished task otherwise."""

from __future__ import annotations

import sys
import time

BAR_WIDTH = 30


class Progress:
    def __init__(self, total: int, stream=None, tty: bool | None = None):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.start = time.monotonic()

    def update(self, task, result) -> None:
        self.done += 1
        column = "" if task.column == "forward" else f" {task.column}"
        what = f"{task.part} {task.name}{column} ({task.mode})"
        if self.tty:
            filled = BAR_WIDTH * self.done // max(1, self.total)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            line = f"\r[{bar}] {self.done}/{self.total} {self._elapsed()} {what}"[:120]
            self.stream.write(line.ljust(120) + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(f"[{self.done}/{self.total}] {what}: {result['status']}\n")
        self.stream.flush()

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.start)
        return f"{seconds // 60}:{seconds % 60:02d}"
