"""Structural checks of the colouring properties, and the two-coloured subgraphs they rest on."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from torch_fwdad.sparse_ad.coloring.result import Coloring, count_colors
from torch_fwdad.sparse_ad.patterns import adjacency, csr_coordinates, symmetrized


def is_valid_coloring(pattern: sp.csr_array, result: Coloring) -> bool:
    """Structural check of the colouring property (used by the tests on random patterns)."""
    if result.kind == "column":
        return columns_distinct_per_row(pattern, result.colors)
    if result.kind == "row":
        return columns_distinct_per_row(sp.csr_array(pattern.T), result.colors)
    return valid_symmetric(adjacency(symmetrized(pattern)), result.colors, result.kind)


def valid_symmetric(graph, colors, kind):
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


def columns_distinct_per_row(pattern, colors):
    rows, cols = csr_coordinates(pattern)
    keys = rows * (int(colors.max(initial=0)) + 1) + colors[cols]
    return len(np.unique(keys)) == pattern.nnz


def two_colored_components(graph: sp.csr_array, colors: np.ndarray):
    """The two-coloured subgraphs, as one graph whose nodes are (vertex, other colour) pairs.

    Vertex v with colour a belongs to the {a, b} subgraph as node v * k + b; the edge (i, j)
    joins nodes (i, colors[j]) and (j, colors[i]). Returns the node ids, the edge list (each
    edge once, as node indices), node degrees and component labels.
    """
    k = count_colors(colors)
    upper = sp.triu(graph, k=1).tocoo()
    i, j = upper.row.astype(np.int64), upper.col.astype(np.int64)
    ends = np.concatenate([i * k + colors[j], j * k + colors[i]])
    nodes, inverse = np.unique(ends, return_inverse=True)
    a, b = inverse[: len(i)], inverse[len(i):]
    forest = sp.coo_array((np.ones(len(a)), (a, b)), shape=(len(nodes), len(nodes))).tocsr()
    _, components = connected_components(forest, directed=False)
    degree = np.bincount(np.concatenate([a, b]), minlength=len(nodes))
    return nodes, (a, b), degree, components
