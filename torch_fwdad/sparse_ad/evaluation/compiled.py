"""torch.compile of a plan's evaluation, with eager as the fallback."""

from __future__ import annotations

import types
import warnings

import torch


class CompiledOrEager:
    """A torch.compile'd evaluation that falls back to eager, with a warning, if compiling fails."""

    def __init__(self, run, backend):
        backend = "inductor" if backend is True else backend
        self.run, self.compiled = run, torch.compile(_own_code(run), dynamic=False, backend=backend)

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as error:  # noqa: BLE001 - any compiler failure: eager is still exact
                warnings.warn(f"compile=True: torch.compile failed ({type(error).__name__}: {str(error)[:200]}); "
                              "evaluating eagerly", RuntimeWarning, stacklevel=3)
                self.compiled = None
        return self.run(*args)


def _own_code(run):
    """`run` with a code object of its own. Dynamo keeps compiled programs, checks their guards
    and counts recompiles per code object; every plan's evaluation is the same closure code, so
    without this the plans of one process would share one cache: each call would check the
    other plans' guards first, and past dynamo's recompile limit (8) new plans would run eagerly."""
    code = run.__code__.replace()  # a copy: same bytecode, a new object
    return types.FunctionType(code, run.__globals__, run.__name__, run.__defaults__, run.__closure__)
