"""torch.compile of a plan's evaluation, with eager as the fallback."""

from __future__ import annotations

import warnings

import torch


class CompiledOrEager:
    """A torch.compile'd evaluation that falls back to eager, with a warning, if compiling fails."""

    def __init__(self, run, backend):
        backend = "inductor" if backend is True else backend
        self.run, self.compiled = run, torch.compile(run, dynamic=False, backend=backend)

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as error:  # noqa: BLE001 - any compiler failure: eager is still exact
                warnings.warn(f"compile=True: torch.compile failed ({type(error).__name__}: {str(error)[:200]}); "
                              "evaluating eagerly", RuntimeWarning, stacklevel=3)
                self.compiled = None
        return self.run(*args)
