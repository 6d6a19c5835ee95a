"""Linear algebra: Cholesky and friends."""

from __future__ import annotations

import torch

__all__ = ["cholesky_jvp"]


def cholesky_jvp(A_t: torch.Tensor, factor: torch.Tensor, upper: bool) -> torch.Tensor:
    """Tangent of the Cholesky factor.

    With A = L Lᴴ: dL = L Φ(L⁻¹ dA L⁻ᴴ), Φ keeping the strict lower triangle and half the
    diagonal. dA is symmetrised first, the convention of PyTorch's cholesky_backward, so
    JVP and VJP agree. For upper=True the factor is U = Lᴴ and dU = dLᴴ.
    """
    L = factor.mH if upper else factor
    dA = 0.5 * (A_t + A_t.mH)
    left = torch.linalg.solve_triangular(L, dA, upper=False)
    inner = torch.linalg.solve_triangular(L, left.mH, upper=False).mH
    phi = inner.tril(-1) + 0.5 * torch.diag_embed(inner.diagonal(dim1=-2, dim2=-1))
    dL = L @ phi
    return dL.mH if upper else dL
