"""The runtime engine: capture upstream Autograd kernels and install forward rules over them.

Imports: nothing.
The engine imports no other torch_fwdad package (only torch, and pyyaml on first use for
torch's derivatives table); every other package may import it. Inside it, upstream.py,
schema.py, tangent_check.py, rule_table.py, extension.py and fast_path.py are leaves: no
module of the engine imports another that imports it back.
"""

from .registry import (
    BuiltinEntry,
    RegisteredRule,
    disable,
    enable,
    engine_info,
    install_builtin,
    is_enabled,
    register_jvp,
    registered_ops,
    unregister_jvp,
    use_python_path,
)
from .upstream import has_upstream_forward_ad

__all__ = [
    "BuiltinEntry", "RegisteredRule", "disable", "enable", "engine_info", "install_builtin",
    "is_enabled", "register_jvp", "registered_ops", "unregister_jvp", "use_python_path",
    "has_upstream_forward_ad",
]
