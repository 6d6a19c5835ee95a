"""The debug check: does the sparse result times a random vector match one exact product?"""

from __future__ import annotations

import warnings

import torch

from torch_fwdad.sparse_ad.patterns import csr_coordinates

#: "auto": "raise" on the first evaluation of a detected pattern, no check for a given one
CHECKS = ("auto", None, "raise", "warn")


class SparsityPatternError(ValueError):
    """The pattern misses nonzeros that the function really has (found by check="raise")."""


def check_against_probe(values, pattern, exact_times, how, what="Jacobian"):
    """Compare (sparse result) @ v with an exact product at one random v.

    A nonzero outside the pattern is either dropped or added into another entry by the
    decompression; either way the two products differ at a random v (with probability one).
    """
    if how is None:
        return
    if how not in CHECKS[2:]:
        raise ValueError(f"check must be 'auto', None, 'raise' or 'warn', got {how!r}")
    m, n = pattern.shape
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(n, generator=generator, dtype=values.real.dtype).to(values)
    exact = exact_times(probe).reshape(-1)
    rows, cols = csr_coordinates(pattern)  # row-major, the order of `values`
    rows, cols = torch.from_numpy(rows).to(values.device), torch.from_numpy(cols).to(values.device)
    approx = values.new_zeros(m).index_add_(0, rows, values * probe[cols])
    scale = values.new_zeros(m).index_add_(0, rows, (values * probe[cols]).abs()).real + exact.abs()
    eps = torch.finfo(values.real.dtype).eps
    bad = ((exact - approx).abs() > eps ** 0.5 * scale + eps * scale.max()).nonzero().flatten()
    if len(bad) == 0:
        return
    message = (f"the sparsity pattern misses nonzeros of the {what}: rows {bad[:10].tolist()}"
               f"{' ...' if len(bad) > 10 else ''} ({len(bad)} of {m}) disagree with an exact product "
               f"(largest difference {(exact - approx).abs().max().item():.3g}). Add the missing entries "
               "or use sparsity='detect'.")
    if how == "raise":
        raise SparsityPatternError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
