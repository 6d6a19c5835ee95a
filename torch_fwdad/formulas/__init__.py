"""Hand-written helpers that derivatives.yaml formulas call: the math lives here, one family a module.

Every name in a module's __all__ is in scope for formulas (codegen checks this).
"""

from . import _common, linalg
from ._common import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403

__all__ = [*_common.__all__, *linalg.__all__]
