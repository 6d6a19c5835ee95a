"""Forward mode through torch.distributed: functional collectives, in-place c10d, DTensor.

`install()` (opt-in: call it after `import torch_fwdad`; see docs/distributed.md for the
known reverse-mode breakage that keeps it off by default) registers the collective rules when
torch.distributed is available; they need `torch.distributed._functional_collectives`
loaded first (its reverse-mode kernels are what the rules sit on, and loading it later
would replace them). DTensor's rules wait until `torch.distributed.tensor` is imported
(about 1 s, not worth paying on `import torch_fwdad`): a post-import hook registers them.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

import torch

DTENSOR_MODULE = "torch.distributed.tensor"


_installed = False


def install() -> None:
    global _installed
    if _installed or not torch.distributed.is_available():
        return
    _installed = True
    from .c10d import register_c10d_rules
    from .collectives import register_functional_rules

    register_functional_rules()
    register_c10d_rules()
    if DTENSOR_MODULE in sys.modules:
        _register_dtensor()
    else:
        sys.meta_path.insert(0, _AfterImport(DTENSOR_MODULE, _register_dtensor))


def _register_dtensor() -> None:
    from .dtensor import register_dtensor_rules

    register_dtensor_rules()


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
