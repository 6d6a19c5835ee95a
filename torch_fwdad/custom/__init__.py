"""Forward rules for your own code.

- custom operators: `torch_fwdad.register_jvp(op, rule, transpose=...)` (engine/registry.py);
  engine/transpose.py derives their reverse mode from the rule;
- Python functions: `custom_jvp` (like `jax.custom_jvp`), whose reverse mode is the same
  transpose;
- `check_jvp`: linearity and finite-difference check of either kind of rule.

Imports: engine.
The engine never imports custom: what both use (the transpose, `check_tangent`) lives in
the engine.
"""

from .check import JvpCheckError, check_jvp
from .custom_jvp import custom_jvp

__all__ = ["JvpCheckError", "check_jvp", "custom_jvp"]
