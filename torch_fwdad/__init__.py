"""torch_fwdad: forward-mode AD wherever PyTorch's reverse mode works.

`import torch_fwdad` installs the forward rules of derivatives.yaml that the installed
torch lacks. `disable()` / `enable()` remove and reinstall every rule;
`register_jvp` gives any operator a rule of your own.
"""

from ._generated.jvp_rules import ENTRIES as _ENTRIES
from .engine import (
    RegisteredRule,
    disable,
    enable,
    is_enabled,
    register_jvp,
    registered_ops,
    unregister_jvp,
)
from .engine import install_builtin as _install_builtin

__version__ = "0.1.0"

#: derivatives.yaml entry name -> "installed" or why it was skipped for this torch.
builtin_status = _install_builtin(_ENTRIES)

__all__ = [
    "RegisteredRule", "builtin_status", "disable", "enable", "is_enabled",
    "register_jvp", "registered_ops", "unregister_jvp",
]
