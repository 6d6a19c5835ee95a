"""The runtime engine: capture upstream Autograd kernels and install forward rules over them."""

from .registry import (
    BuiltinEntry,
    RegisteredRule,
    disable,
    enable,
    install_builtin,
    is_enabled,
    register_jvp,
    registered_ops,
    unregister_jvp,
)
from .upstream import has_upstream_forward_ad

__all__ = [
    "BuiltinEntry", "RegisteredRule", "disable", "enable", "install_builtin", "is_enabled",
    "register_jvp", "registered_ops", "unregister_jvp", "has_upstream_forward_ad",
]
