"""Numerical sparsity detection: the union of the nonzeros of Jacobians (or Hessians) at random points."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from torch_fwdad.sparse_ad.inputs import FlatInputs
from torch_fwdad.sparse_ad.patterns import from_coordinates
from torch_fwdad.sparse_ad.products import hvp_products, jvp_products


def numeric_pattern(func, x, *, num_points=3, chunk_size=None, seed=0, hessian=False) -> sp.csr_array:
    """Union of the nonzeros of the Jacobian (or Hessian) at `num_points` random points near x.

    Memory stays O(chunk_size * outputs): the identity basis is pushed `chunk_size` columns at a time.
    A nonzero that vanishes at every sampled point is missed (use check="raise" to catch it).
    """
    inputs = FlatInputs.of(x)
    flat_func, x_flat = inputs.flat_function(func), inputs.flatten(x).detach()
    products = hvp_products if hessian else jvp_products
    n = inputs.numel
    generator = torch.Generator().manual_seed(seed)
    rows, cols = [], []
    m = n
    for _ in range(num_points):
        noise = torch.rand(n, generator=generator, dtype=x_flat.real.dtype).to(x_flat)
        point = x_flat + (noise - 0.5) * (x_flat.abs() + 1) * 0.2
        if not hessian:
            with torch.no_grad():
                m = flat_func(point).numel()
        step = chunk_size or max(1, min(n, 2 ** 22 // max(m, 1)))
        for start in range(0, n, step):
            basis = torch.eye(n, dtype=x_flat.dtype, device=x_flat.device)[start:start + step]
            block = products(flat_func, point, basis).reshape(len(basis), -1)
            col, row = (block != 0).nonzero(as_tuple=True)
            rows.append(row.cpu().numpy())
            cols.append(col.cpu().numpy() + start)
    return from_coordinates(np.concatenate(rows), np.concatenate(cols), m, n)
