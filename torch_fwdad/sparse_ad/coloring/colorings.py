"""The four colourings (column, row, star, acyclic), their lower bounds, and the best of several.

Jacobians: a *column colouring* is a partial distance-2 colouring of the bipartite row/column
graph (no two columns of one colour share a row), i.e. a distance-1 colouring of the column
intersection graph P^T P; a *row colouring* is the same on P^T. Hessians (symmetric): a *star
colouring* (every path on four vertices uses three colours: direct recovery) and an *acyclic
colouring* (every cycle uses three colours: recovery by substitution).

Acyclic colourings also try a distance-2-preferring greedy (see `greedy.acyclic_greedy`) along a
few orderings, whatever `refine`. It reaches the optimal 3 colours on the 5-point Laplacian.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from torch_fwdad.sparse_ad.coloring.checks import columns_distinct_per_row, valid_symmetric
from torch_fwdad.sparse_ad.coloring.greedy import acyclic_greedy, greedy_coloring, star_greedy
from torch_fwdad.sparse_ad.coloring.orderings import DEFAULT_ORDERING, dsatur_order, vertex_order
from torch_fwdad.sparse_ad.coloring.refine import refine_for, refined
from torch_fwdad.sparse_ad.coloring.result import KINDS, Coloring, ColoredPattern, count_colors
from torch_fwdad.sparse_ad.patterns import adjacency, column_intersection_graph, symmetrized

#: Orderings for the distance-2-preferring acyclic greedy, tried in turn (then the requested
#: one) until the forest lower bound is met. Chosen on the 5-point Laplacian: each of these
#: reaches 3 there (largest-first gives 4), smallest-last first as it is the degeneracy order.
ACYCLIC_DISTANCE2_ORDERINGS = ("smallest_last", "incidence_degree", "natural")


def column_coloring(pattern: sp.csr_array, ordering: str = DEFAULT_ORDERING,
                    refine: int | None = None) -> Coloring:
    """Partial distance-2 colouring of the columns: one JVP per colour."""
    refine = refine_for("column", refine)
    graph = column_intersection_graph(pattern)
    first = greedy_coloring(graph, vertex_order(graph, ordering))
    bound = _max_row_nnz(pattern)
    colors = refined(first, lambda order: greedy_coloring(graph, order),
                     lambda colors: columns_distinct_per_row(pattern, colors), refine, bound,
                     first_orders=(lambda: dsatur_order(graph),))
    return Coloring(colors, count_colors(colors), bound, "column", ordering, refine, count_colors(first))


def row_coloring(pattern: sp.csr_array, ordering: str = DEFAULT_ORDERING, refine: int | None = None) -> Coloring:
    """Partial distance-2 colouring of the rows: one VJP per colour."""
    column = column_coloring(sp.csr_array(pattern.T), ordering, refine_for("row", refine))
    return Coloring(column.colors, column.num_colors, column.lower_bound, "row", ordering, column.refine,
                    column.greedy_num_colors)


def star_coloring(pattern: sp.csr_array, ordering: str = DEFAULT_ORDERING, refine: int | None = None) -> Coloring:
    """Star colouring of a symmetric pattern: one HVP per colour, every entry read directly."""
    return _symmetric_coloring(pattern, ordering, star_greedy, "star", refine)


def acyclic_coloring(pattern: sp.csr_array, ordering: str = DEFAULT_ORDERING,
                     refine: int | None = None) -> Coloring:
    """Acyclic colouring of a symmetric pattern: one HVP per colour, entries by substitution."""
    return _symmetric_coloring(pattern, ordering, acyclic_greedy, "acyclic", refine)


def _symmetric_coloring(pattern, ordering, greedy, kind, refine):
    """Iterated greedy is monotone only for plain colourings: here every candidate is checked.

    Acyclic colourings also try, whatever `refine`, the distance-2-preferring greedy along
    ACYCLIC_DISTANCE2_ORDERINGS and the requested ordering (stopping at the lower bound); a
    candidate is kept only with strictly fewer colours and after the structural check.
    """
    refine = refine_for(kind, refine)
    graph = adjacency(symmetrized(pattern))
    first = greedy(graph, vertex_order(graph, ordering))
    bound = _forest_lower_bound(graph)
    candidates = ()
    if kind == "acyclic":
        orderings = dict.fromkeys((*ACYCLIC_DISTANCE2_ORDERINGS, ordering))
        candidates = tuple(
            (lambda o=o: acyclic_greedy(graph, vertex_order(graph, o), prefer_distance2=True))
            for o in orderings)
    colors = refined(first, lambda order: greedy(graph, order),
                     lambda colors: valid_symmetric(graph, colors, kind), refine, bound,
                     first_colorings=candidates)
    return Coloring(colors, count_colors(colors), bound, kind, ordering, refine, count_colors(first))


def coloring(pattern: sp.csr_array, kind: str, ordering: str = DEFAULT_ORDERING,
             refine: int | None = None) -> Coloring:
    builders = {"column": column_coloring, "row": row_coloring,
                "star": star_coloring, "acyclic": acyclic_coloring}
    if kind not in builders:
        raise ValueError(f"unknown colouring {kind!r}; choose one of {KINDS}")
    return builders[kind](pattern, ordering, refine)



def color_pattern(pattern: sp.csr_array, kinds, ordering: str = DEFAULT_ORDERING,
                  refine: int | None = None, choose=None) -> ColoredPattern:
    """Colour for every kind in `kinds` and keep `choose(colourings)`; by default the one needing
    the fewest products (ties: the first)."""
    colorings = [coloring(pattern, kind, ordering, refine) for kind in kinds]
    chosen = choose(colorings) if choose is not None else min(colorings, key=lambda c: c.num_colors)
    return ColoredPattern(pattern, chosen)


def _max_row_nnz(pattern):
    """Lower bound of any column colouring: the columns of one row all need distinct colours."""
    return int(np.diff(pattern.indptr).max(initial=0))


def _forest_lower_bound(graph):
    """Lower bound of star and acyclic colourings with k colours.

    Each of the k(k-1)/2 two-coloured subgraphs is a forest, so |E| <= (k-1) n - k(k-1)/2.
    (The row-count bound of column colouring does not hold here: symmetry beats it.)
    """
    n, edges = graph.shape[0], graph.nnz // 2
    k = 1
    while edges > (k - 1) * n - k * (k - 1) // 2:
        k += 1
    return k if n else 0

