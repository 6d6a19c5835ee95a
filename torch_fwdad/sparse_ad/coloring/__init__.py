"""Colouring stage: a pattern in, a `ColoredPattern` (pattern, colouring, mode) out.

One job per module: `orderings` (vertex orders), `greedy` (the greedy loops), `refine`
(DSatur and iterated greedy), `checks` (structural checks of the colouring properties),
`colorings` (the four colourings, their bounds, the best of several), `result` (the types
handed on). Imports run result -> orderings/greedy/checks/refine -> colorings; this package
imports `patterns` below it and nothing from detection or evaluation.
"""

from torch_fwdad.sparse_ad.coloring.checks import is_valid_coloring, two_colored_components
from torch_fwdad.sparse_ad.coloring.colorings import (
    acyclic_coloring,
    color_pattern,
    coloring,
    column_coloring,
    row_coloring,
    star_coloring,
)
from torch_fwdad.sparse_ad.coloring.greedy import greedy_coloring
from torch_fwdad.sparse_ad.coloring.orderings import DEFAULT_ORDERING, ORDERINGS, vertex_order
from torch_fwdad.sparse_ad.coloring.refine import DEFAULT_REFINE
from torch_fwdad.sparse_ad.coloring.result import KINDS, ColoredPattern, Coloring

__all__ = [
    "DEFAULT_ORDERING", "DEFAULT_REFINE", "KINDS", "ORDERINGS", "ColoredPattern", "Coloring", "acyclic_coloring",
    "color_pattern", "coloring", "column_coloring", "greedy_coloring", "is_valid_coloring", "row_coloring",
    "star_coloring", "two_colored_components", "vertex_order",
]
