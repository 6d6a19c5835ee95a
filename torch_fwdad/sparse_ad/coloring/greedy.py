"""Greedy colouring loops, one per colouring property: distance-1, star and acyclic.

The textbook greedy loops (Gebremedhin, Manne, Pothen, "What color is your Jacobian?", SIAM
Review 2005). Hand-written because no maintained Python library offers star or acyclic
colouring; networkx's greedy colouring is distance-1 only and not a runtime dependency.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import scipy.sparse as sp


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


def star_greedy(graph, order) -> np.ndarray:
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


def acyclic_greedy(graph, order, prefer_distance2=False) -> np.ndarray:
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


#: Two-hop neighbourhoods larger than this are not scanned by `acyclic_greedy(prefer_distance2=True)`.
_DISTANCE2_SCAN_LIMIT = 256
