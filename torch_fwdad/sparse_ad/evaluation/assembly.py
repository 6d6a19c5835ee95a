"""The user's output format from the pattern's values, with every index buffer built once.

An `Assembly` is made per prepared pattern, output format and shapes; each call then only
wraps (or scatters) the values: no NumPy or pattern work per evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from torch_fwdad.sparse_ad.coloring import Coloring
from torch_fwdad.sparse_ad.patterns import csr_coordinates

#: "sparse" is "coo"; "scipy" is a scipy.sparse CSR array, "scipy-csc" a CSC one (both 2-D).
OUTPUTS = ("sparse", "coo", "csr", "dense", "scipy", "scipy-csc", "compressed")


@dataclass(frozen=True)
class Compressed:
    """What a plan computes before decompression (output="compressed"), for users who decompress.

    `matrix[c]` is the product with seed c: the JVP (column colouring, shape (colors, outputs)),
    VJP (row colouring, (colors, inputs)) or HVP (star/acyclic, (colors, inputs)) with the sum
    of the columns (rows, variables) v with `coloring.colors[v] == c`. `pattern` is the
    (outputs, inputs) scipy CSR pattern the colouring was made for.
    """

    matrix: torch.Tensor
    coloring: Coloring
    pattern: sp.csr_array


def _unravel(flat_index: np.ndarray, shape) -> np.ndarray:
    if not shape:
        return np.empty((0, len(flat_index)), dtype=np.int64)
    return np.stack(np.unravel_index(flat_index, shape)).astype(np.int64)


class _Block:
    """One (output tensor, input tensor) block: its entries' positions in the values, and its buffers."""

    def __init__(self, picked, rows, cols, row_shape, col_shape, output, device):
        self.picked = None if picked is None else torch.from_numpy(picked).to(device)
        self.row_shape, self.col_shape, self.output = tuple(row_shape), tuple(col_shape), output
        m, n = math.prod(row_shape), math.prod(col_shape)
        self.size = (m, n)
        if output == "dense":
            self.flat = torch.from_numpy(rows * n + cols).to(device)
        elif output == "csr":
            self.crow = torch.from_numpy(np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=m))])).to(device)
            self.col = torch.from_numpy(cols).to(device)
        elif output in ("sparse", "coo"):
            self.indices = torch.from_numpy(np.concatenate([_unravel(rows, row_shape), _unravel(cols, col_shape)])).to(device)
        else:  # scipy: the block's index arrays, copied into every result (scipy arrays are mutable)
            kind = sp.csc_array if output == "scipy-csc" else sp.csr_array
            positions = kind((np.arange(len(rows)) + 1, (rows, cols)), shape=(m, n))
            self.order = positions.data - 1  # values are in CSR order; CSC reorders them
            self.indices_np, self.indptr_np = positions.indices.astype(np.int64), positions.indptr.astype(np.int64)

    def __call__(self, values: torch.Tensor):
        if self.picked is not None:
            values = values[self.picked]
        if self.output == "dense":
            dense = values.new_zeros(self.size[0] * self.size[1]).index_put_((self.flat,), values)
            return dense.reshape(*self.row_shape, *self.col_shape)
        if self.output == "csr":
            return torch.sparse_csr_tensor(self.crow, self.col, values, size=self.size, check_invariants=False)
        if self.output in ("sparse", "coo"):
            # CSR order is row-major order, so the COO tensor is already coalesced.
            return torch.sparse_coo_tensor(self.indices, values, (*self.row_shape, *self.col_shape),
                                           is_coalesced=True, check_invariants=False)
        data = values.detach().cpu().numpy()[self.order]
        kind = sp.csc_array if self.output == "scipy-csc" else sp.csr_array
        return kind((data, self.indices_np.copy(), self.indptr_np.copy()), shape=self.size)


class Assembly:
    """Split the (m, n) values into blocks by output and input tensor, each like jacfwd's."""

    def __init__(self, pattern, row_shapes, col_shapes, output, row_tuple, col_tuple, device):
        rows, cols = csr_coordinates(pattern)
        row_edges = np.cumsum([0] + [math.prod(s) for s in row_shapes])
        col_edges = np.cumsum([0] + [math.prod(s) for s in col_shapes])
        single = len(row_shapes) == 1 and len(col_shapes) == 1
        self.row_tuple, self.col_tuple = row_tuple, col_tuple
        self.blocks = []
        for r in range(len(row_shapes)):
            for c in range(len(col_shapes)):
                keep = (rows >= row_edges[r]) & (rows < row_edges[r + 1]) & (cols >= col_edges[c]) & (cols < col_edges[c + 1])
                picked = None if single else np.flatnonzero(keep)
                self.blocks.append(_Block(picked, rows[keep] - row_edges[r], cols[keep] - col_edges[c],
                                          row_shapes[r], col_shapes[c], output, device))
        self.num_cols = len(col_shapes)
        self.single = single and not row_tuple and not col_tuple

    def __call__(self, values: torch.Tensor):
        if self.single:  # one output and one input tensor: the block itself
            return self.blocks[0](values)
        blocks = [block(values) for block in self.blocks]
        rows = [tuple(blocks[r * self.num_cols:(r + 1) * self.num_cols]) for r in range(len(blocks) // self.num_cols)]
        rows = [row if self.col_tuple else row[0] for row in rows]
        return tuple(rows) if self.row_tuple else rows[0]
