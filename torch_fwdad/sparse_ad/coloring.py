"""Graph colourings that compress Jacobians and Hessians, and structural checks of them.

Jacobians: a *column colouring* is a partial distance-2 colouring of the bipartite row/column
graph (no two columns of one colour share a row), i.e. a distance-1 colouring of the column
intersection graph P^T P; a *row colouring* is the same on P^T. Hessians (symmetric): a *star
colouring* (every path on four vertices uses three colours: direct recovery) and an *acyclic
colouring* (every cycle uses three colours: recovery by substitution).

Why hand-written: networkx's `greedy_color` offers neither incidence-degree nor
dynamic-largest-first orderings nor star/acyclic colourings, igraph and scipy offer none of
them, and networkx is not a runtime dependency. The greedy loops below are the textbook ones
(Gebremedhin, Manne, Pothen, "What color is your Jacobian?", SIAM Review 2005).

Refinement (`refine=`): after the first greedy colouring, a DSatur colouring (plain colourings
only) and Culberson's iterated greedy (re-run greedy with the vertices grouped by colour class;
Culberson & Luo 1996) are tried, and a candidate is kept only when it has no more colours and
passes the structural check. networkx has no iterated greedy and its DSatur is quadratic in
Python (11 s on the 64x64 Laplacian), so this is hand-written too.

Acyclic colourings also try a distance-2-preferring greedy (see `_acyclic_greedy`) along a few
orderings, whatever `refine`; it is hand-written because no maintained Python library offers
acyclic colouring at all. It reaches the optimal 3 colours on the 5-point Laplacian.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from torch_fwdad.sparse_ad.patterns import adjacency, column_intersection_graph, symmetrized

ORDERINGS = ("natural", "largest_first", "smallest_last", "incidence_degree", "dynamic_largest_first")
#: Chosen on benchmarks/bench_sparse.py: fewest colours in total over its six problems.
DEFAULT_ORDERING = "largest_first"
#: Refinement passes after the first greedy colouring, per kind, used when refine=None (0: plain
#: greedy). Chosen on benchmarks/bench_sparse.py: for column/row colourings DSatur plus 4 passes
#: take the 64x64 Laplacian from 7 to 5 colours for ~30 ms; for star/acyclic colourings no pass
#: ever removed a colour there while each costs one more greedy colouring (prep 10x), so off.
DEFAULT_REFINE = {"column": 4, "row": 4, "star": 0, "acyclic": 0}
KINDS = ("column", "row", "star", "acyclic")


@dataclass(frozen=True, eq=False)
class Coloring:
    """colors[v] in [0, num_colors) for each column (column), row (row) or variable (star/acyclic)."""

    colors: np.ndarray
    num_colors: int
    lower_bound: int
    kind: str
    ordering: str
    refine: int = 0
    #: colours of the first greedy colouring, before refinement
    greedy_num_colors: int | None = None

    def __repr__(self):
        return (f"Coloring(kind={self.kind!r}, num_colors={self.num_colors}, "
                f"lower_bound={self.lower_bound}, ordering={self.ordering!r}, refine={self.refine}, "
                f"greedy_num_colors={self.greedy_num_colors})")


# ----------------------------------------------------------------------------- orderings

def vertex_order(graph: sp.csr_array, ordering: str) -> list[int]:
    """The order in which greedy colouring visits the vertices of an undirected graph."""
    degree = np.diff(graph.indptr)
    if ordering == "natural":
        return list(range(graph.shape[0]))
    if ordering == "largest_first":
        return np.argsort(-degree, kind="stable").tolist()
    if ordering == "smallest_last":
        return _dynamic_order(graph, degree, pick_max=False, step=-1)[::-1]
    if ordering == "dynamic_largest_first":
        return _dynamic_order(graph, degree, pick_max=True, step=-1)
    if ordering == "incidence_degree":
        return _dynamic_order(graph, np.zeros_like(degree), pick_max=True, step=+1)
    raise ValueError(f"unknown ordering {ordering!r}; choose one of {ORDERINGS}")


def _dynamic_order(graph, key, *, pick_max, step):
    """Repeatedly take the vertex with the extreme key, then add `step` to its unvisited neighbours.

    Covers smallest-last (min remaining degree, reversed afterwards), dynamic-largest-first
    (max remaining degree) and incidence-degree (max count of visited neighbours).
    Ties go to the lowest index. Lazy-deletion heap: O(E log V).
    """
    sign = -1 if pick_max else 1
    key = key.tolist()
    indptr, indices = graph.indptr.tolist(), graph.indices.tolist()
    heap = [(sign * k, v) for v, k in enumerate(key)]
    heapq.heapify(heap)
    done = [False] * len(key)
    order = []
    while heap:
        signed_key, v = heapq.heappop(heap)
        if done[v] or signed_key != sign * key[v]:
            continue
        done[v] = True
        order.append(v)
        for w in indices[indptr[v]:indptr[v + 1]]:
            if not done[w]:
                key[w] += step
                heapq.heappush(heap, (sign * key[w], w))
    return order


def dsatur_order(graph: sp.csr_array) -> list[int]:
    """The order in which DSatur colours: most distinct neighbour colours first, then degree.

    Greedy colouring along this order reproduces the DSatur colouring (Brelaz 1979): it is a
    dynamic order, so it is a refinement candidate rather than one of ORDERINGS. Lazy heap.
    """
    n = graph.shape[0]
    indptr, indices = graph.indptr.tolist(), graph.indices.tolist()
    degree = np.diff(graph.indptr).tolist()
    seen = [set() for _ in range(n)]  # colours among the coloured neighbours
    color = [-1] * n
    heap = [(0, -degree[v], v) for v in range(n)]
    heapq.heapify(heap)
    order = []
    while heap:
        saturation, _, v = heapq.heappop(heap)
        if color[v] >= 0 or -saturation != len(seen[v]):
            continue
        neighbours = indices[indptr[v]:indptr[v + 1]]
        color[v] = _smallest_missing({color[w] for w in neighbours})
        order.append(v)
        for w in neighbours:
            if color[w] < 0 and color[v] not in seen[w]:
                seen[w].add(color[v])
                heapq.heappush(heap, (-len(seen[w]), -degree[w], w))
    return order


def _smallest_missing(used):
    c = 0
    while c in used:
        c += 1
    return c


#: Culberson's class orders, cycled: reverse class order, largest classes first, random.
CLASS_ORDERS = ("reverse", "largest_first", "random")


def class_order(colors: np.ndarray, how: str, rng: np.random.Generator) -> list[int]:
    """Vertices grouped by colour class, the classes in the order `how` (see CLASS_ORDERS).

    Greedy along any such order never needs more colours than `colors` has (plain colouring).
    """
    k = _count(colors)
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
        if _count(colors) <= lower_bound:
            return colors
        candidate = make()
        if _count(candidate) < _count(colors) and is_valid(candidate):
            colors = candidate
    if iterations <= 0:
        return colors
    rng = np.random.default_rng(0)
    for step in range(len(first_orders) + iterations):
        if _count(colors) <= lower_bound:
            break
        if step < len(first_orders):
            order = first_orders[step]()
        else:
            order = class_order(colors, CLASS_ORDERS[(step - len(first_orders)) % len(CLASS_ORDERS)], rng)
        candidate = recolor(order)
        if _count(candidate) <= _count(colors) and is_valid(candidate):
            colors = candidate
    return colors


# ----------------------------------------------------------------------------- colourings

def greedy_coloring(graph: sp.csr_array, order) -> np.ndarray:
    """Distance-1 greedy: each vertex takes the smallest colour none of its neighbours has."""
    indptr, indices = graph.indptr.tolist(), graph.indices.tolist()
    colors = [-1] * graph.shape[0]
    seen_by = [-1] * (graph.shape[0] + 1)
    for v in order:
        for w in indices[indptr[v]:indptr[v + 1]]:
            seen_by[colors[w]] = v  # colors[w] == -1 marks the spare last slot: harmless
        color = 0
        while seen_by[color] == v:
            color += 1
        colors[v] = color
    return np.asarray(colors, dtype=np.int64)


def _star_greedy(graph, order) -> np.ndarray:
    """Greedy star colouring, forbidding exactly the colours that would close a two-coloured P4.

    When v is coloured c, a new two-coloured path on four vertices has v either at an end
    (v-w-x-y with c = color[x], color[y] = color[w]) or inside (u-v-w-y with color[u] = color[w],
    color[y] = c). `blocked[w]` caches the colours the first case forbids to w's neighbours.
    """
    n = graph.shape[0]
    indptr, indices = graph.indptr.tolist(), graph.indices.tolist()
    nbrs = [indices[indptr[v]:indptr[v + 1]] for v in range(n)]
    color = [-1] * n
    count = [defaultdict(int) for _ in range(n)]  # count[x][a]: coloured neighbours of x with colour a
    blocked = [set() for _ in range(n)]  # colours of x in N(w) where x has >= 2 neighbours of w's colour
    for v in order:
        forbidden = set()
        for w in nbrs[v]:
            cw = color[w]
            if cw < 0:
                continue
            forbidden.add(cw)
            forbidden |= blocked[w]
            if count[v][cw] >= 2:  # v is the hub of two cw-coloured neighbours
                forbidden.update(count[w])
        c = 0
        while c in forbidden:
            c += 1
        color[v] = c
        _record_star_color(v, c, nbrs, color, count, blocked)
    return np.asarray(color, dtype=np.int64)


def _record_star_color(v, c, nbrs, color, count, blocked):
    for x in nbrs[v]:
        count[x][c] += 1
        if color[x] < 0:
            continue
        if count[x][c] == 2:
            for w in nbrs[x]:
                if color[w] == c:
                    blocked[w].add(color[x])
        elif count[x][c] > 2:
            blocked[v].add(color[x])
    for a, how_many in count[v].items():
        if how_many >= 2:
            for w in nbrs[v]:
                if color[w] == a:
                    blocked[w].add(c)


def _acyclic_greedy(graph, order, prefer_distance2=False) -> np.ndarray:
    """Greedy acyclic colouring with a union-find over edges (one set per two-coloured tree).

    Colour c is forbidden for v when two neighbours of v already lie in one tree whose colours
    include c: the edges to v would close a two-coloured cycle.

    `prefer_distance2`: instead of the smallest allowed colour, v takes the allowed colour
    already in use that most coloured vertices at distance 2 have (ties to the smaller colour),
    and opens a new colour only when none is allowed. Sharing colours with distance-2 vertices
    keeps the colour classes dense, so fewer colours stay forbidden later: on the 5-point
    Laplacian this finds the optimal 3 colours (smallest-last, incidence-degree or natural
    order) where smallest-allowed greedy needs 4 with every ordering. The distance-2 scan is
    skipped when at most one colour is allowed, and for vertices whose two-hop neighbourhood
    exceeds `_DISTANCE2_SCAN_LIMIT` entries (hubs), which then take the smallest allowed colour.
    Hand-written, like the rest of this function: no maintained Python library offers acyclic
    colouring.
    """
    n = graph.shape[0]
    indptr, indices = graph.indptr.tolist(), graph.indices.tolist()
    nbrs = [indices[indptr[v]:indptr[v + 1]] for v in range(n)]
    color = [-1] * n
    parent = {}
    trees_at = [defaultdict(list) for _ in range(n)]  # trees_at[w][c]: edges (w, x), color[x] = c

    def find(e):
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    def union(e1, e2):
        parent[find(e1)] = find(e2)

    used = 0  # colours in use
    for v in order:
        forbidden, owner = set(), {}
        for w in nbrs[v]:
            if color[w] < 0:
                continue
            forbidden.add(color[w])
            for c, edges in trees_at[w].items():
                roots = {find(e) for e in edges}
                edges[:] = roots  # compress: one representative per tree
                for root in roots:
                    if owner.setdefault(root, w) != w:
                        forbidden.add(c)
        c = 0
        while c in forbidden:
            c += 1
        if prefer_distance2 and c + 1 < used:
            allowed = [a for a in range(c, used) if a not in forbidden]
            if len(allowed) > 1 and sum(len(nbrs[w]) for w in nbrs[v]) <= _DISTANCE2_SCAN_LIMIT:
                at_distance2 = defaultdict(int)
                for w in nbrs[v]:
                    for x in nbrs[w]:
                        if x != v and color[x] >= 0:
                            at_distance2[color[x]] += 1
                c = min(allowed, key=lambda a: (-at_distance2[a], a))
        used = max(used, c + 1)
        color[v] = c
        for w in nbrs[v]:
            if color[w] < 0:
                continue
            edge = min(v, w) * n + max(v, w)
            parent[edge] = edge
            for other in trees_at[w][c]:
                union(edge, other)
            trees_at[w][c].append(edge)
            trees_at[v][color[w]].append(edge)
        for edges in trees_at[v].values():  # v's edges to one colour join one tree through v
            for edge in edges[1:]:
                union(edge, edges[0])
    return np.asarray(color, dtype=np.int64)


#: Two-hop neighbourhoods larger than this are not scanned by `_acyclic_greedy(prefer_distance2=True)`.
_DISTANCE2_SCAN_LIMIT = 256

#: Orderings for the distance-2-preferring acyclic greedy, tried in turn (then the requested
#: one) until the forest lower bound is met. Chosen on the 5-point Laplacian: each of these
#: reaches 3 there (largest-first gives 4), smallest-last first as it is the degeneracy order.
ACYCLIC_DISTANCE2_ORDERINGS = ("smallest_last", "incidence_degree", "natural")


def column_coloring(pattern: sp.csr_array, ordering: str = DEFAULT_ORDERING,
                    refine: int | None = None) -> Coloring:
    """Partial distance-2 colouring of the columns: one JVP per colour."""
    refine = _refine_for("column", refine)
    graph = column_intersection_graph(pattern)
    first = greedy_coloring(graph, vertex_order(graph, ordering))
    bound = _max_row_nnz(pattern)
    colors = refined(first, lambda order: greedy_coloring(graph, order),
                     lambda colors: _columns_distinct_per_row(pattern, colors), refine, bound,
                     first_orders=(lambda: dsatur_order(graph),))
    return Coloring(colors, _count(colors), bound, "column", ordering, refine, _count(first))


def row_coloring(pattern: sp.csr_array, ordering: str = DEFAULT_ORDERING, refine: int | None = None) -> Coloring:
    """Partial distance-2 colouring of the rows: one VJP per colour."""
    column = column_coloring(sp.csr_array(pattern.T), ordering, _refine_for("row", refine))
    return Coloring(column.colors, column.num_colors, column.lower_bound, "row", ordering, column.refine,
                    column.greedy_num_colors)


def star_coloring(pattern: sp.csr_array, ordering: str = DEFAULT_ORDERING, refine: int | None = None) -> Coloring:
    """Star colouring of a symmetric pattern: one HVP per colour, every entry read directly."""
    return _symmetric_coloring(pattern, ordering, _star_greedy, "star", refine)


def acyclic_coloring(pattern: sp.csr_array, ordering: str = DEFAULT_ORDERING,
                     refine: int | None = None) -> Coloring:
    """Acyclic colouring of a symmetric pattern: one HVP per colour, entries by substitution."""
    return _symmetric_coloring(pattern, ordering, _acyclic_greedy, "acyclic", refine)


def _symmetric_coloring(pattern, ordering, greedy, kind, refine):
    """Iterated greedy is monotone only for plain colourings: here every candidate is checked.

    Acyclic colourings also try, whatever `refine`, the distance-2-preferring greedy along
    ACYCLIC_DISTANCE2_ORDERINGS and the requested ordering (stopping at the lower bound); a
    candidate is kept only with strictly fewer colours and after the structural check.
    """
    refine = _refine_for(kind, refine)
    graph = adjacency(symmetrized(pattern))
    first = greedy(graph, vertex_order(graph, ordering))
    bound = _forest_lower_bound(graph)
    candidates = ()
    if kind == "acyclic":
        orderings = dict.fromkeys((*ACYCLIC_DISTANCE2_ORDERINGS, ordering))
        candidates = tuple(
            (lambda o=o: _acyclic_greedy(graph, vertex_order(graph, o), prefer_distance2=True))
            for o in orderings)
    colors = refined(first, lambda order: greedy(graph, order),
                     lambda colors: _valid_symmetric(graph, colors, kind), refine, bound,
                     first_colorings=candidates)
    return Coloring(colors, _count(colors), bound, kind, ordering, refine, _count(first))


def coloring(pattern: sp.csr_array, kind: str, ordering: str = DEFAULT_ORDERING,
             refine: int | None = None) -> Coloring:
    builders = {"column": column_coloring, "row": row_coloring,
                "star": star_coloring, "acyclic": acyclic_coloring}
    if kind not in builders:
        raise ValueError(f"unknown colouring {kind!r}; choose one of {KINDS}")
    return builders[kind](pattern, ordering, refine)


def _refine_for(kind, refine):
    """Refinement passes: DEFAULT_REFINE[kind] for None, else a non-negative int."""
    if refine is None:
        return DEFAULT_REFINE[kind]
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
        raise ValueError(f"refine must be None or a non-negative int, got {refine!r}")
    return refine


def _count(colors):
    return int(colors.max()) + 1 if len(colors) else 0


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


# ----------------------------------------------------------------------------- checks

def is_valid_coloring(pattern: sp.csr_array, result: Coloring) -> bool:
    """Structural check of the colouring property (used by the tests on random patterns)."""
    if result.kind == "column":
        return _columns_distinct_per_row(pattern, result.colors)
    if result.kind == "row":
        return _columns_distinct_per_row(sp.csr_array(pattern.T), result.colors)
    return _valid_symmetric(adjacency(symmetrized(pattern)), result.colors, result.kind)


def _valid_symmetric(graph, colors, kind):
    """Star or acyclic colouring property on the adjacency graph (no self loops)."""
    rows, cols = graph.nonzero()
    if np.any(colors[rows] == colors[cols]):
        return False
    nodes, edges, degree, components = two_colored_components(graph, colors)
    edges_per = np.bincount(components[edges[0]], minlength=components.max(initial=-1) + 1)
    nodes_per = np.bincount(components, minlength=len(edges_per))
    is_forest = np.all(edges_per == nodes_per - 1)
    if kind == "acyclic":
        return bool(is_forest)
    hub_degree = np.zeros(len(nodes_per), dtype=np.int64)
    np.maximum.at(hub_degree, components, degree)
    return bool(is_forest and np.all(hub_degree == nodes_per - 1))


def _columns_distinct_per_row(pattern, colors):
    rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
    keys = rows * (int(colors.max(initial=0)) + 1) + colors[pattern.indices]
    return len(np.unique(keys)) == pattern.nnz


def two_colored_components(graph: sp.csr_array, colors: np.ndarray):
    """The two-coloured subgraphs, as one graph whose nodes are (vertex, other colour) pairs.

    Vertex v with colour a belongs to the {a, b} subgraph as node v * k + b; the edge (i, j)
    joins nodes (i, colors[j]) and (j, colors[i]). Returns the node ids, the edge list (each
    edge once, as node indices), node degrees and component labels.
    """
    k = _count(colors)
    upper = sp.triu(graph, k=1).tocoo()
    i, j = upper.row.astype(np.int64), upper.col.astype(np.int64)
    ends = np.concatenate([i * k + colors[j], j * k + colors[i]])
    nodes, inverse = np.unique(ends, return_inverse=True)
    a, b = inverse[: len(i)], inverse[len(i):]
    forest = sp.coo_array((np.ones(len(a)), (a, b)), shape=(len(nodes), len(nodes))).tocsr()
    _, components = connected_components(forest, directed=False)
    degree = np.bincount(np.concatenate([a, b]), minlength=len(nodes))
    return nodes, (a, b), degree, components
