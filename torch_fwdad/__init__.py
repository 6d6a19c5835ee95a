"""torch_fwdad: forward-mode AD wherever PyTorch's reverse mode works.

`import torch_fwdad` installs the forward rules of derivatives.yaml that the installed
torch lacks. `disable()` / `enable()` remove and reinstall every rule;
`register_jvp` gives any operator a rule of your own, `custom_jvp` any Python function;
`jacobian` / `hessian` exploit known or detected sparsity.

Imports: any subpackage except report, testing.
Imports run one way, and tests/test_imports.py checks it: each package's docstring names,
on its `Imports:` line, the torch_fwdad packages it may import; `torch_fwdad` there means
this module, the installed package. engine is at the bottom and imports none of them;
report and testing sit on top of the installed package; `python -m torch_fwdad`
(__main__.py) is an entry point that nothing imports.
"""

import importlib as _importlib

from ._generated.jvp_rules import ENTRIES as _ENTRIES
from .custom import JvpCheckError, check_jvp, custom_jvp
from .engine import (
    RegisteredRule,
    disable,
    enable,
    engine_info,
    is_enabled,
    register_jvp,
    registered_ops,
    unregister_jvp,
)
from .engine import install_builtin as _install_builtin
from .formulas.linear_cross_entropy import register_rules as _register_linear_cross_entropy_rules
from .formulas.transformer import record_fused_kernels as _record_fused_kernels

__version__ = "0.1.0"

# Everything `import torch_fwdad` installs is installed here, and nowhere else: no other
# module registers anything when it is imported.

#: derivatives.yaml entry name -> "installed" or why it was skipped for this torch.
builtin_status = _install_builtin(_ENTRIES)

# Rules outside derivatives.yaml: F.linear_cross_entropy's chunked custom ops (torch_nn::...).
_register_linear_cross_entropy_rules()

# The fused transformer kernels' rules keep the intermediates the kernels compute.
_record_fused_kernels()

# In-place c10d rules now; the functional collectives' and DTensor's when their modules load.
_importlib.import_module("torch_fwdad.distributed").install()

# Sparse Jacobians pull in scipy: loaded on first use, not at import.
_SPARSE_AD = (
    "jacobian", "hessian", "jacobian_plan", "hessian_plan", "BlockDiagonal", "Banded",
    "SparsityPatternError", "JacobianPlan", "HessianPlan", "Coloring",
)


def __getattr__(name):
    if name in _SPARSE_AD:
        return getattr(_importlib.import_module("torch_fwdad.sparse_ad"), name)
    raise AttributeError(f"module 'torch_fwdad' has no attribute {name!r}")


__all__ = [
    "JvpCheckError", "RegisteredRule", "builtin_status", "check_jvp", "custom_jvp", "disable",
    "enable", "engine_info", "is_enabled", "register_jvp", "registered_ops", "unregister_jvp", *_SPARSE_AD,
]
