"""The orders in which greedy colouring visits vertices: static, dynamic (lazy heaps) and DSatur's.

Why hand-written: networkx's `greedy_color` offers neither incidence-degree nor
dynamic-largest-first orderings, igraph and scipy offer none, and networkx is not a runtime
dependency (Gebremedhin, Manne, Pothen, "What color is your Jacobian?", SIAM Review 2005).
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.sparse as sp

ORDERINGS = ("natural", "largest_first", "smallest_last", "incidence_degree", "dynamic_largest_first")
#: Chosen on benchmarks/bench_sparse.py: fewest colours in total over its six problems.
DEFAULT_ORDERING = "largest_first"


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

