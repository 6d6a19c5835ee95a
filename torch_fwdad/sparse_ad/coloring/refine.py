"""Refinement after the first greedy colouring (`refine=`): DSatur and Culberson's iterated greedy.

A DSatur colouring (plain colourings only) and Culberson's iterated greedy (re-run greedy with
the vertices grouped by colour class; Culberson & Luo 1996) are tried, and a candidate is kept
only when it has no more colours and passes the structural check. networkx has no iterated
greedy and its DSatur is quadratic in Python (11 s on the 64x64 Laplacian), so this is
hand-written.
"""

from __future__ import annotations

import numpy as np

from torch_fwdad.sparse_ad.coloring.result import count_colors

#: Refinement passes after the first greedy colouring, per kind, used when refine=None (0: plain
#: greedy). Chosen on benchmarks/bench_sparse.py: for column/row colourings DSatur plus 4 passes
#: take the 64x64 Laplacian from 7 to 5 colours for ~30 ms; for star/acyclic colourings no pass
#: ever removed a colour there while each costs one more greedy colouring (prep 10x), so off.
DEFAULT_REFINE = {"column": 4, "row": 4, "star": 0, "acyclic": 0}


#: Culberson's class orders, cycled: reverse class order, largest classes first, random.
CLASS_ORDERS = ("reverse", "largest_first", "random")


def class_order(colors: np.ndarray, how: str, rng: np.random.Generator) -> list[int]:
    """Vertices grouped by colour class, the classes in the order `how` (see CLASS_ORDERS).

    Greedy along any such order never needs more colours than `colors` has (plain colouring).
    """
    k = count_colors(colors)
    if how == "reverse":
        classes = np.arange(k)[::-1]
    elif how == "largest_first":
        classes = np.argsort(-np.bincount(colors, minlength=k), kind="stable")
    else:
        classes = rng.permutation(k)
    rank = np.empty(k, dtype=np.int64)
    rank[classes] = np.arange(k)
    return np.argsort(rank[colors], kind="stable").tolist()


def refined(colors, recolor, is_valid, iterations, lower_bound, first_orders=(), first_colorings=()):
    """The best of `colors`, `first_colorings`, greedy along each of `first_orders` and
    `iterations` iterated-greedy passes.

    `recolor(order)` is the greedy colouring along `order`; `first_orders` are functions that
    return an order and `first_colorings` functions that return a whole candidate colouring
    (both computed only when needed; `first_colorings` are tried even with `iterations=0`).
    A candidate replaces the current colouring only if it has no more colours and
    `is_valid(candidate)`, so the count never grows. Stops early at `lower_bound`. Seeded,
    hence deterministic. `iterations=0` turns the rest off.
    """
    for make in first_colorings:
        if count_colors(colors) <= lower_bound:
            return colors
        candidate = make()
        if count_colors(candidate) < count_colors(colors) and is_valid(candidate):
            colors = candidate
    if iterations <= 0:
        return colors
    rng = np.random.default_rng(0)
    for step in range(len(first_orders) + iterations):
        if count_colors(colors) <= lower_bound:
            break
        if step < len(first_orders):
            order = first_orders[step]()
        else:
            order = class_order(colors, CLASS_ORDERS[(step - len(first_orders)) % len(CLASS_ORDERS)], rng)
        candidate = recolor(order)
        if count_colors(candidate) <= count_colors(colors) and is_valid(candidate):
            colors = candidate
    return colors



def refine_for(kind, refine):
    """Refinement passes: DEFAULT_REFINE[kind] for None, else a non-negative int."""
    if refine is None:
        return DEFAULT_REFINE[kind]
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
        raise ValueError(f"refine must be None or a non-negative int, got {refine!r}")
    return refine

