"""Sparse Jacobians and Hessians: known or detected sparsity, graph colouring, compressed evaluation.

`jacobian` / `hessian` compute in one call; `jacobian_plan` / `hessian_plan` separate the
preparation (pattern, colouring) from repeated evaluation. See docs/sparse.md.
"""

from torch_fwdad.sparse_ad.assembly import OUTPUTS, Compressed
from torch_fwdad.sparse_ad.coloring import (
    DEFAULT_ORDERING,
    DEFAULT_REFINE,
    ORDERINGS,
    Coloring,
    acyclic_coloring,
    column_coloring,
    is_valid_coloring,
    row_coloring,
    star_coloring,
)
from torch_fwdad.sparse_ad.detect import numeric_pattern, structural_pattern
from torch_fwdad.sparse_ad.patterns import Banded, BlockDiagonal
from torch_fwdad.sparse_ad.plans import (
    HessianPlan,
    JacobianPlan,
    SparsityPatternError,
    hessian,
    hessian_plan,
    jacobian,
    jacobian_plan,
)

__all__ = [
    "Banded", "BlockDiagonal", "Coloring", "Compressed", "OUTPUTS", "DEFAULT_ORDERING", "DEFAULT_REFINE", "HessianPlan", "JacobianPlan", "ORDERINGS",
    "SparsityPatternError", "acyclic_coloring", "column_coloring", "hessian", "hessian_plan",
    "is_valid_coloring", "jacobian", "jacobian_plan", "numeric_pattern", "row_coloring", "star_coloring",
    "structural_pattern",
]
