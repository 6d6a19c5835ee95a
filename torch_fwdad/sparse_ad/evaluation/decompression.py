"""Recovering the nonzeros from the compressed products, with index tensors only.

Each decompressor is built once per plan (the Python work happens here) and maps the
compressed matrix `compressed` of shape (num_colors, dim) to the pattern's values, in the
pattern's CSR order, with gathers and one cumulative sum: no Python loop over nonzeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import depth_first_order

from torch_fwdad.sparse_ad.coloring import ColoredPattern, Coloring, two_colored_components
from torch_fwdad.sparse_ad.patterns import adjacency, csr_coordinates


def _on(cache: dict, device, arrays: dict, dtype=None, signs=()) -> dict:
    """The index arrays as tensors on `device` (the `signs` among them in `dtype`), made on first use and kept."""
    if (device, dtype) not in cache:
        cache[device, dtype] = {name: torch.from_numpy(array).to(device, dtype if name in signs else None)
                                for name, array in arrays.items()}
    return cache[device, dtype]


@dataclass(frozen=True, eq=False)
class DirectDecompression:
    """values[e] = compressed.flatten()[source[e]]: column and row colourings, star colourings."""

    source: np.ndarray
    _tensors: dict = field(default_factory=dict, repr=False)

    def values(self, compressed: torch.Tensor) -> torch.Tensor:
        """One index_select: advanced indexing (`flat[index]`) measured 2-4x slower on CPU."""
        index = self._tensors.get(compressed.device)
        if index is None:
            index = self._tensors[compressed.device] = torch.from_numpy(self.source).to(compressed.device)
        return compressed.reshape(-1).index_select(0, index)


def column_decompression(pattern: sp.csr_array, coloring: Coloring) -> DirectDecompression:
    """compressed[c, i] = sum of J[i, j] over columns j of colour c: exactly one is in row i's pattern."""
    rows, cols = csr_coordinates(pattern)
    return DirectDecompression(coloring.colors[cols] * pattern.shape[0] + rows)


def row_decompression(pattern: sp.csr_array, coloring: Coloring) -> DirectDecompression:
    rows, cols = csr_coordinates(pattern)
    return DirectDecompression(coloring.colors[rows] * pattern.shape[1] + cols)


def star_decompression(pattern: sp.csr_array, coloring: Coloring) -> DirectDecompression:
    """H[i, j] = compressed[color[j], i] when j is i's only neighbour of its colour, else compressed[color[i], j]."""
    n, colors = pattern.shape[0], coloring.colors
    k = max(coloring.num_colors, 1)
    rows, cols = csr_coordinates(pattern)
    off = rows != cols
    per_row_color = np.bincount(rows[off] * k + colors[cols[off]], minlength=n * k)
    alone = per_row_color[rows * k + colors[cols]] == 1
    read_row = alone | ~off  # the diagonal is read at compressed[color[i], i]
    source = np.where(read_row, colors[cols] * n + rows, colors[rows] * n + cols)
    return DirectDecompression(source)


@dataclass(frozen=True, eq=False)
class SubstitutionDecompression:
    """Acyclic colourings: every two-coloured subgraph is a forest, solved leaf-first.

    In a rooted tree whose nodes are (vertex, other colour) pairs, node u reads
    b_u = compressed[other colour, vertex] = H[u, parent] + sum of H[u, child], so the value on
    u's parent edge is y_u = sum over u's subtree of (-1)^(depth - depth_u) b. With the nodes in
    depth-first order a subtree is a contiguous range: one cumulative sum gives every y_u.

    Every entry is then read as ext[high] - ext[low] from one buffer
    ext = [0, cumulative sums..., compressed.flatten()...]: an off-diagonal entry reads its
    subtree's range of the cumulative sums (high and low swapped where the subtree's sign is
    negative), a diagonal entry reads compressed[color[i], i] (high) minus the leading zero (low).
    `pairs` holds every high, then every low, so both are one gather and no sign is multiplied
    per entry: six kernels per call, all of size O(nnz).
    """

    node_source: np.ndarray  # nodes in preorder -> flat index into compressed
    node_sign: np.ndarray  # (-1)^depth, preorder
    pairs: np.ndarray  # (2 * entries,): per pattern entry in CSR order, high then low, into ext
    _tensors: dict = field(default_factory=dict, repr=False)

    def values(self, compressed: torch.Tensor) -> torch.Tensor:
        """The signs are kept in the products' dtype, so a call converts nothing."""
        arrays = {"node_source": self.node_source, "node_sign": self.node_sign, "pairs": self.pairs}
        t = _on(self._tensors, compressed.device, arrays, compressed.dtype, signs=("node_sign",))
        flat = compressed.reshape(-1)
        signed = flat.index_select(0, t["node_source"]) * t["node_sign"]
        ext = torch.cat([signed.new_zeros(1), torch.cumsum(signed, 0), flat])
        high_low = ext.index_select(0, t["pairs"])
        entries = len(high_low) // 2
        return high_low[:entries] - high_low[entries:]


def substitution_decompression(pattern: sp.csr_array, coloring: Coloring) -> SubstitutionDecompression:
    n, colors = pattern.shape[0], coloring.colors
    k = max(coloring.num_colors, 1)
    graph = adjacency(pattern)
    nodes, (a, b), _, components = two_colored_components(graph, colors)
    preorder, parent = _forest_preorder(len(nodes), a, b, components)
    position = np.empty(len(nodes) + 1, dtype=np.int64)
    position[preorder] = np.arange(len(preorder))
    depth, size = _depths_and_sizes(preorder, parent)
    child = np.where(parent[a] == b, a, b)  # the edge (a, b) hangs below its child node

    rows, cols = csr_coordinates(pattern)
    off = rows != cols
    edge_of_entry = _edge_ids(graph, a, b, nodes, k, n)
    entry_child = child[edge_of_entry]
    start = position[entry_child]
    node_order = preorder[1:]  # drop the virtual root
    sign = np.where(depth % 2 == 0, 1, -1)
    compressed_start = len(node_order) + 1  # where compressed.flatten() begins in ext
    # off-diagonal: the subtree's range of prefix sums (minus one: the virtual root is not a node);
    # diagonal: compressed[color[i], i] minus ext[0] == 0
    high = np.full(len(rows), compressed_start, dtype=np.int64) + colors[rows] * n + rows
    high[off] = start - 1 + size[entry_child]
    low = np.zeros(len(rows), dtype=np.int64)
    low[off] = start - 1
    negative = np.zeros(len(rows), dtype=bool)
    negative[off] = sign[entry_child] < 0
    high[negative], low[negative] = low[negative], high[negative]  # -(a - b) == b - a
    return SubstitutionDecompression(
        node_source=(nodes[node_order] % k) * n + nodes[node_order] // k,
        node_sign=sign[node_order].astype(np.int8),
        pairs=np.concatenate([high, low]),
    )


def _forest_preorder(num_nodes, a, b, components):
    """Depth-first preorder of the forest under a virtual root joined to one node per tree."""
    root = num_nodes
    _, first_node = np.unique(components, return_index=True)
    heads = np.concatenate([a, np.full(len(first_node), root)])
    tails = np.concatenate([b, first_node])
    forest = sp.coo_array((np.ones(len(heads)), (heads, tails)), shape=(root + 1, root + 1)).tocsr()
    preorder, parent = depth_first_order(forest, root, directed=False, return_predecessors=True)
    return preorder.astype(np.int64), parent.astype(np.int64)


def _depths_and_sizes(preorder, parent):
    """Depth and subtree size of every node (the one O(nodes) Python loop, at preparation time)."""
    depth = np.zeros(len(parent), dtype=np.int64)
    order = preorder.tolist()
    par = parent.tolist()
    depth_list = depth.tolist()
    for u in order[1:]:
        depth_list[u] = depth_list[par[u]] + 1
    size_list = [1] * len(par)
    for u in reversed(order[1:]):
        size_list[par[u]] += size_list[u]
    return np.asarray(depth_list), np.asarray(size_list)


def _edge_ids(graph, a, b, nodes, k, n):
    """For each off-diagonal entry of the pattern, in CSR order, its index in the edge list (a, b)."""
    i, j = nodes[a] // k, nodes[b] // k
    ids = np.arange(len(a), dtype=np.int64) + 1
    both = sp.coo_array((np.concatenate([ids, ids]), (np.concatenate([i, j]), np.concatenate([j, i]))),
                        shape=(n, n)).tocsr()
    both.sort_indices()
    return both.data.astype(np.int64) - 1


DECOMPRESSIONS = {
    "column": column_decompression,
    "row": row_decompression,
    "star": star_decompression,
    "acyclic": substitution_decompression,
}


def decompression_for(colored: ColoredPattern):
    """The decompression the colouring's mode needs, its index arrays built now."""
    return DECOMPRESSIONS[colored.mode](colored.pattern, colored.coloring)
