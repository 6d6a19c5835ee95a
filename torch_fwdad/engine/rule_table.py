"""The table of registered rules: a leaf, so that forward_over_reverse.py (which the kernel
imports) reads it without importing registry.py (which imports the kernel).

Only registry.py writes it.
"""

from __future__ import annotations

import torch

#: op -> its registry.Registration, for every op with a rule of ours (enabled or not)
registrations: dict[torch._ops.OpOverload, object] = {}


def has_installed_aten_rule(name: str) -> bool:
    """Whether some overload of aten::`name` has a kernel of ours installed now."""
    return any(op.namespace == "aten" and op._schema.name == f"aten::{name}" and registration.library is not None
               for op, registration in registrations.items())
