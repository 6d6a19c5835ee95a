"""Forward mode through torch.distributed: functional collectives, in-place c10d, DTensor.

`install()` (run by `import torch_fwdad`) registers the in-place c10d rules at once (cheap:
those ops exist as soon as torch is imported) and defers the rest until the module they
sit on is first imported, so `import torch_fwdad` pays for neither:
- the functional collectives' rules wait for `torch.distributed._functional_collectives`,
  whose reverse-mode kernels they sit on (installed earlier, that import would replace them);
- DTensor's wait for `torch.distributed.tensor` (about 1 s to import);
- FSDP2's for the module that defines its state (it imports the parameter and group modules).

Imports: engine.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

import torch

DTENSOR_MODULE = "torch.distributed.tensor"
FSDP_MODULE = "torch.distributed.fsdp._fully_shard._fsdp_state"


FUNCTIONAL_MODULE = "torch.distributed._functional_collectives"
_installed = False


def install() -> None:
    global _installed
    if _installed or not torch.distributed.is_available():
        return
    _installed = True
    from .c10d import register_c10d_rules

    register_c10d_rules()
    when_imported(FUNCTIONAL_MODULE, _register_functional)
    when_imported(DTENSOR_MODULE, _register_dtensor)
    when_imported(FSDP_MODULE, _register_fsdp)


def when_imported(name: str, callback) -> None:
    if name in sys.modules:
        callback()
    else:
        sys.meta_path.insert(0, _AfterImport(name, callback))


def _register_functional() -> None:
    from .collectives import register_functional_rules

    register_functional_rules()


def _register_dtensor() -> None:
    from .dtensor import register_dtensor_rules

    register_dtensor_rules()


def _register_fsdp() -> None:
    from .fsdp import register_fsdp_rules

    register_fsdp_rules()


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `callback` once, right after the module `name` has executed (stdlib has no hook for it)."""

    def __init__(self, name: str, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module, callback = spec.loader.exec_module, self.callback

        def exec_then_register(module):
            exec_module(module)
            callback()

        spec.loader.exec_module = exec_then_register
        return spec
