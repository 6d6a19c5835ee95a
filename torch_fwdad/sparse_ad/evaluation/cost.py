"""Which symmetric colouring a Hessian plan with method="auto" evaluates: the cheaper call, estimated.

Star colourings need more colours (more HVPs) and recover every entry with one gather; acyclic
colourings need fewer colours and recover by substitution (a gather, a cumulative sum, a
concatenation and a gather of twice the entries). Both costs grow with the size of x: one more
colour costs about one HVP's work per variable, the substitution about a constant per stored
nonzero. So acyclic pays off when the colours it saves exceed a constant times the nonzeros
per row, nnz / n. The constant depends on how the products run: eager vmap(jvp(jacrev)) costs
far more per colour than the compiled program does, while the substitution is eager gathers
in both (inductor's gathers measured slower).
"""

from __future__ import annotations

from torch_fwdad.sparse_ad.coloring import Coloring

#: colours the substitution is worth, per stored nonzero per row, eager (False) and compiled
#: (True). Measured with benchmarks/bench_sparse.py --choice (products and decompression of
#: both colourings timed side by side; float64, one thread, on a shared 2-core machine),
#: 5-point Laplacian and its square on 64^2 and 256^2 grids: eager 0.13-0.14 on the 256^2 grids
#: (acyclic faster), compiled star faster on all four, so the compiled constant only keeps
#: acyclic for colourings that save many colours on very sparse rows.
SUBSTITUTION_COLORS_PER_ROW_NNZ = {False: 0.17, True: 1.5}


def substitution_worth(pattern, compiled: bool) -> float:
    """How many colours acyclic must save over star before its substitution pays off."""
    rows = max(pattern.shape[0], 1)
    return SUBSTITUTION_COLORS_PER_ROW_NNZ[bool(compiled)] * pattern.nnz / rows


def cheaper_symmetric_coloring(colorings, pattern, compiled: bool) -> Coloring:
    """Star, unless an acyclic colouring saves more colours than its substitution is worth."""
    by_kind = {c.kind: c for c in colorings}
    star, acyclic = by_kind.get("star"), by_kind.get("acyclic")
    if star is None or acyclic is None:
        return min(colorings, key=lambda c: c.num_colors)
    saved = star.num_colors - acyclic.num_colors
    return acyclic if saved > substitution_worth(pattern, compiled) else star
