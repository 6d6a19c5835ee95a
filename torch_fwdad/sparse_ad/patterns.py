"""Sparsity patterns: the user's spec (string, structured, explicit) -> a boolean scipy CSR matrix.

Every pattern in this package is an (m, n) `scipy.sparse.csr_array` of dtype bool with
sorted, duplicate-free indices: rows are the flattened outputs, columns the flattened inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

#: Specs that need the function itself rather than a fixed structure.
DETECT_SPECS = ("detect", "detect-numeric", "detect-structural")


@dataclass(frozen=True)
class BlockDiagonal:
    """Square blocks of `block_size` along the diagonal (the last block may be smaller)."""

    block_size: int

    def __post_init__(self):
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"BlockDiagonal(block_size) needs a positive int, got {self.block_size!r}")

    def build(self, m: int, n: int) -> sp.csr_array:
        rows, cols = _pairs_where(m, n, lambda i, j: i // self.block_size == j // self.block_size,
                                  halfwidth=self.block_size)
        return from_coordinates(rows, cols, m, n)


@dataclass(frozen=True)
class Banded:
    """Entries (i, j) with -lower <= j - i <= upper, the usual band of a stencil."""

    lower: int
    upper: int

    def __post_init__(self):
        for name in ("lower", "upper"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Banded({name}=...) needs a non-negative int, got {value!r}")

    def build(self, m: int, n: int) -> sp.csr_array:
        offsets = list(range(-self.lower, self.upper + 1))
        return as_bool_csr(sp.diags_array([np.ones(n)] * len(offsets), offsets=offsets, shape=(m, n)))


def _pairs_where(m, n, keep, halfwidth):
    """Coordinates (i, j) with |i - j| < halfwidth that satisfy `keep`, vectorised over the band."""
    i = np.repeat(np.arange(m), 2 * halfwidth - 1)
    j = i + np.tile(np.arange(-halfwidth + 1, halfwidth), m)
    inside = (j >= 0) & (j < n)
    i, j = i[inside], j[inside]
    kept = keep(i, j)
    return i[kept], j[kept]


def from_coordinates(rows, cols, m: int, n: int) -> sp.csr_array:
    data = np.ones(len(rows), dtype=bool)
    return as_bool_csr(sp.coo_array((data, (np.asarray(rows), np.asarray(cols))), shape=(m, n)))


def csr_coordinates(pattern: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of every entry in CSR (row-major) order, as int64: the order of a plan's values."""
    rows = np.repeat(np.arange(pattern.shape[0], dtype=np.int64), np.diff(pattern.indptr))
    return rows, pattern.indices.astype(np.int64)


def as_bool_csr(matrix) -> sp.csr_array:
    """Canonical form: CSR, bool, sorted indices, no duplicates, no explicit zeros."""
    csr = sp.csr_array(matrix)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr = sp.csr_array((np.ones(csr.nnz, dtype=bool), csr.indices.astype(np.int64),
                        csr.indptr.astype(np.int64)), shape=csr.shape)
    csr.has_sorted_indices = True
    return csr


def resolve_pattern(spec, m: int, n: int) -> sp.csr_array:
    """The (m, n) boolean pattern described by `spec` (anything but None and the detect specs)."""
    if isinstance(spec, str):
        if spec == "diagonal":
            return Banded(0, 0).build(m, n)
        raise ValueError(f"unknown sparsity {spec!r}: use None, 'diagonal', 'detect', "
                         "BlockDiagonal(b), Banded(lower, upper) or an explicit pattern")
    if isinstance(spec, (BlockDiagonal, Banded)):
        return spec.build(m, n)
    return explicit_pattern(spec, (m, n))


def explicit_pattern(pattern, shape=None) -> sp.csr_array:
    """Validate a user pattern (bool tensor, torch sparse COO/CSR, scipy.sparse) and canonicalise it."""
    if isinstance(pattern, torch.Tensor):
        matrix = _from_torch(pattern)
    elif sp.issparse(pattern):
        if pattern.dtype != np.bool_:
            raise TypeError(f"sparsity pattern must be boolean, got a scipy matrix of dtype {pattern.dtype}; "
                            "pass `matrix != 0` or `matrix.astype(bool)`")
        matrix = pattern
    else:
        raise TypeError(f"sparsity pattern must be a bool tensor, a torch sparse tensor or a scipy.sparse "
                        f"matrix, got {type(pattern).__name__}")
    if shape is not None and tuple(matrix.shape) != tuple(shape):
        raise ValueError(f"sparsity pattern has shape {tuple(matrix.shape)} but the Jacobian, flattened to "
                         f"(outputs, inputs), has shape {tuple(shape)}")
    return as_bool_csr(matrix)


def _from_torch(tensor: torch.Tensor):
    if tensor.dtype != torch.bool:
        raise TypeError(f"sparsity pattern must be boolean, got a tensor of dtype {tensor.dtype}; "
                        "pass `pattern != 0`")
    if tensor.dim() != 2:
        raise ValueError(f"sparsity pattern must be 2-D (flattened outputs x flattened inputs), "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.layout == torch.strided:
        return sp.csr_array(tensor.cpu().numpy())
    coo = tensor.to_sparse_coo().coalesce().cpu()
    rows, cols = coo.indices().numpy()
    keep = coo.values().numpy()
    return from_coordinates(rows[keep], cols[keep], *tensor.shape)


def symmetrized(pattern: sp.csr_array) -> sp.csr_array:
    """Hessian patterns are symmetric by definition: take P | P^T."""
    if pattern.shape[0] != pattern.shape[1]:
        raise ValueError(f"a Hessian pattern must be square, got shape {pattern.shape}")
    return as_bool_csr(pattern + pattern.T)


def adjacency(pattern: sp.csr_array) -> sp.csr_array:
    """Graph of a symmetric pattern: off-diagonal entries only."""
    adj = sp.csr_array(pattern, copy=True)
    adj.setdiag(False)
    return as_bool_csr(adj)


def column_intersection_graph(pattern: sp.csr_array) -> sp.csr_array:
    """Columns j, k adjacent iff they share a row: distance-2 neighbours in the bipartite graph.

    Costs sum over rows of nnz(row)^2 memory; a dense row makes this the complete graph.
    """
    p = pattern.astype(np.int32)
    return adjacency(as_bool_csr(p.T @ p))
