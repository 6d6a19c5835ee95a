"""Sparse Jacobians and Hessians in three stages: detection, colouring, evaluation.

`jacobian` / `hessian` compute in one call; `jacobian_plan` / `hessian_plan` separate the
preparation (pattern, colouring) from repeated evaluation. See docs/sparse.md.

Layout, by stage (as asdex and SparseMatrixColorings.jl lay it out):

    inputs, products, patterns   the flat view of x; JVP/VJP/HVP batches; pattern specs -> CSR
    detection/                   function -> pattern (numeric sampling, or tracing with per-op rules)
    coloring/                    pattern -> ColoredPattern (pattern, colouring, mode)
    evaluation/                  ColoredPattern -> products, decompression, output formats
    plans, api                   the pipeline cached per input shape; the public functions

Imports run one way: detection -> coloring -> evaluation in stage order, nothing back. No stage
imports a later one: detection imports only the bottom layer (inputs, products, patterns);
coloring imports patterns; evaluation imports coloring's result types and the bottom layer;
only `plans` (and `api` above it) import all three stages.

Imports: engine.
"""

from torch_fwdad.sparse_ad.api import hessian, hessian_plan, jacobian, jacobian_plan
from torch_fwdad.sparse_ad.coloring import (
    DEFAULT_ORDERING,
    DEFAULT_REFINE,
    ORDERINGS,
    ColoredPattern,
    Coloring,
    acyclic_coloring,
    column_coloring,
    is_valid_coloring,
    row_coloring,
    star_coloring,
)
from torch_fwdad.sparse_ad.detection import numeric_pattern, structural_pattern
from torch_fwdad.sparse_ad.evaluation import OUTPUTS, Compressed, SparsityPatternError
from torch_fwdad.sparse_ad.patterns import Banded, BlockDiagonal
from torch_fwdad.sparse_ad.plans import HessianPlan, JacobianPlan

__all__ = [
    "Banded", "BlockDiagonal", "ColoredPattern", "Coloring", "Compressed", "OUTPUTS", "DEFAULT_ORDERING",
    "DEFAULT_REFINE", "HessianPlan", "JacobianPlan", "ORDERINGS", "SparsityPatternError", "acyclic_coloring",
    "column_coloring", "hessian", "hessian_plan", "is_valid_coloring", "jacobian", "jacobian_plan",
    "numeric_pattern", "row_coloring", "star_coloring", "structural_pattern",
]
