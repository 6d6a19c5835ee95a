"""Linear algebra: Cholesky, Householder products (ormqr) and friends; det, slogdet, solve
and householder_product where an outer derivative differentiates the tangent (PyTorch's
formulas are exact in value only: the first three read an LU factorization it declares
non-differentiable); the 1-norm's tangent out of place, alone and inside renorm and dist
(PyTorch's scales sgn's saved output in place)."""

from __future__ import annotations

import torch

from ._common import add_tangents, sum_tangents

__all__ = ["cholesky_jvp", "det_jvp", "dist_l1_jvp", "eigh_jvp", "householder_product_jvp", "l1_norm_jvp", "ormqr_jvp",
           "renorm_l1_jvp", "slogdet_jvp", "solve_jvp"]


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


def ormqr_jvp(input, tau, other, input_t, tau_t, other_t, left: bool, transpose: bool) -> torch.Tensor:
    """Tangent of ormqr: op(Q) C (left) or C op(Q), Q = H_1 ... H_k from (input, tau).

    C's term is ormqr itself. The reflectors' term uses dQ (householder_product_tangent);
    like PyTorch's ormqr_backward, every input is differentiated, tau for any value
    (H_i need not be unitary), input through its strictly lower part only.
    """
    tangent = None if other_t is None else torch.ormqr(input, tau, other_t, left, transpose)
    if input_t is None and tau_t is None:
        return tangent
    dQ = householder_product_tangent(input, tau, input_t, tau_t)
    dQ = dQ.mH if transpose else dQ
    term = dQ @ other if left else other @ dQ
    return term if tangent is None else tangent + term


def householder_product_jvp(input, tau, input_t, tau_t) -> torch.Tensor:
    """Tangent of linalg.householder_product: the first n columns of dQ (input is m x n)."""
    return _first_columns(householder_product_tangent(input, tau, input_t, tau_t), input.shape[-1])


def householder_product_tangent(input, tau, input_t, tau_t) -> torch.Tensor:
    """dQ of the full square Q = H_1 ... H_k, H_i = I - tau_i v_i v_iᴴ (LAPACK's convention).

    dQ = Σ_i P_i dH_i S_i with P_i = H_1..H_{i-1}, S_i = H_{i+1}..H_k and
    dH_i = -(dtau_i v_i v_iᴴ + tau_i (dv_i v_iᴴ + v_i dv_iᴴ)), written as rank-one terms
    (P_i a)(S_iᴴ b)ᴴ. Every P_i and S_i comes from one batched householder_product over
    tau masked to the reflectors before (after) i.
    """
    m, k = input.shape[-2], tau.shape[-1]
    V = _first_columns(input, k).tril(-1) + torch.eye(m, k, dtype=input.dtype, device=input.device)
    prefix, suffix = _partial_householder_products(input, tau)
    Pv = _apply_each(prefix, V)  # column i: P_i v_i
    Sv = _apply_each(suffix.mH, V)  # column i: S_iᴴ v_i
    left_factor = None if tau_t is None else Pv * tau_t.unsqueeze(-2)
    dQ_parts = []
    if input_t is not None:
        dV = _first_columns(input_t, k).tril(-1)
        left_factor = add_tangents(left_factor, _apply_each(prefix, dV) * tau.unsqueeze(-2))
        dQ_parts.append((Pv * tau.unsqueeze(-2)) @ _apply_each(suffix.mH, dV).mH)
    dQ_parts.append(left_factor @ Sv.mH)
    return -sum(dQ_parts[1:], dQ_parts[0])


def _partial_householder_products(input, tau):
    """(…, k, m, m) stacks: H_1..H_{i-1} and H_{i+1}..H_k for each i (zero tau = identity)."""
    m, k = input.shape[-2], tau.shape[-1]
    square = torch.nn.functional.pad(_first_columns(input, k), (0, m - k))
    index = torch.arange(k, device=tau.device)
    before = (index.unsqueeze(-1) > index).to(tau.dtype)  # row i keeps reflectors j < i
    after = (index.unsqueeze(-1) < index).to(tau.dtype)
    batched = square.unsqueeze(-3).expand(*square.shape[:-2], k, m, m)

    def product(mask):
        taus = torch.nn.functional.pad(tau.unsqueeze(-2) * mask, (0, m - k))
        return torch.linalg.householder_product(batched, taus)

    return product(before), product(after)


def _first_columns(matrix, k):
    # a full-width slice is an alias, which legacy vmap (batched forward gradcheck) refuses
    return matrix if matrix.shape[-1] == k else matrix[..., :k]


def _apply_each(matrices, columns):
    """Column i of the result is matrices[..., i, :, :] @ columns[..., :, i]."""
    # matmul rather than einsum: legacy vmap (batched forward gradcheck) has no einsum rule
    return (matrices @ columns.mT.unsqueeze(-1)).squeeze(-1).mT


def det_jvp(A: torch.Tensor, A_t: torch.Tensor, det: torch.Tensor) -> torch.Tensor:
    """det' = det · tr(A⁻¹ A'), A's LU factorization recomputed differentiably. A zero pivot
    is nudged by the dtype's eps, as PyTorch's linalg_det_jvp does for a singular A."""
    LU, pivots, _ = torch.linalg.lu_factor_ex(A)
    diagonal = LU.diagonal(dim1=-2, dim2=-1)
    LU = LU + torch.diag_embed((diagonal == 0).to(LU.dtype) * torch.finfo(LU.dtype).eps)
    return det * _trace_of_solve(LU, pivots, A_t)


def slogdet_jvp(A: torch.Tensor, A_t: torch.Tensor, sign: torch.Tensor):
    """(sign', logabsdet') with τ = tr(A⁻¹ A'): logabsdet' = Re τ, sign' = sign · i Im τ
    (zero for a real A, whose sign is locally constant); PyTorch's slogdet_jvp, differentiable."""
    trace = _trace_of_solve(*torch.linalg.lu_factor_ex(A)[:2], A_t)
    if not A.is_complex():
        return torch.zeros_like(sign), trace
    return sign * (1j * trace.imag), trace.real


def _trace_of_solve(LU, pivots, A_t) -> torch.Tensor:
    return torch.linalg.lu_solve(LU, pivots, A_t).diagonal(dim1=-2, dim2=-1).sum(-1)


def solve_jvp(A, A_t, B_t, X, left: bool) -> torch.Tensor:
    """X' = A⁻¹ (B' - A' X) (left) or (B' - X A') A⁻¹ (right); a vector B (NumPy's rule,
    PyTorch's linalg_solve_is_vector_rhs) is solved as one column. Like the primal of
    linalg.solve_ex, a singular A gives no error here."""
    vector = X.dim() == 1 or (X.dim() == A.dim() - 1 and X.shape == A.shape[:-1])
    as_matrix = (lambda t: t.unsqueeze(-1)) if vector else (lambda t: t)
    X_ = as_matrix(X)
    rhs = sum_tangents(None if B_t is None else as_matrix(B_t),
                       None if A_t is None else -(A_t @ X_ if left else X_ @ A_t))
    X_t = torch.linalg.solve_ex(A, rhs, left=left)[0]
    return X_t.squeeze(-1) if vector else X_t


def eigh_jvp(A_t: torch.Tensor, L: torch.Tensor, V: torch.Tensor):
    """(L', V') of a Hermitian A = V diag(L) Vᴴ: with P' = Vᴴ A' V, L' = Re diag(P') and
    V' = V (P' ⊙ F), F_ij = 1 / (L_j - L_i) off the diagonal and 0 on it: PyTorch's
    linalg_eig_jvp (Hermitian case), with the diagonal masked before the division so
    that its derivatives stay finite."""
    dP = V.mH @ A_t @ V
    dL = dP.diagonal(dim1=-2, dim2=-1)
    gaps = L.unsqueeze(-2) - L.unsqueeze(-1)  # gaps[i, j] = L_j - L_i
    off_diagonal = ~torch.eye(L.shape[-1], dtype=torch.bool, device=L.device)
    inverse_gaps = torch.where(off_diagonal, 1 / torch.where(off_diagonal, gaps, 1), 0)
    return (dL.real if dL.is_complex() else dL), V @ (dP * inverse_gaps)


def l1_norm_jvp(self_p, self_t, dim, keepdim):
    """Σ Re(sgn(x) conj(ẋ)) over dim: upstream's 1-norm tangent, written out of place.

    Upstream multiplies sgn's output by the tangent in place on plain tensors; with x
    requiring grad in a forward_ad dual level, sgn's backward has saved that output, and
    reverse mode through the tangent raises. Same ops as upstream's branch for tensor
    subclasses, so the values are its own, bit for bit.
    """
    return torch.real(self_p.sgn().mul(self_t.conj())).sum(dim=dim, keepdim=keepdim)


def renorm_l1_jvp(self_p, self_t, dim, maxnorm):
    """Tangent of renorm with p = 1: upstream's renorm_jvp, its 1-norm tangent out of place.

    Where a slice's norm n exceeds maxnorm, out = x maxnorm / (n + 1e-7) and
    dout = maxnorm / (n + 1e-7) (ẋ - x dn / (n + 1e-7)); elsewhere dout = ẋ. The same ops
    in upstream's order, so the values are its own, bit for bit. float16 and bfloat16 never
    reach it (derivatives.yaml's condition): upstream's tangent there is float32.
    """
    dim = dim % max(self_p.dim(), 1)
    reduce_dims = [d for d in range(self_p.dim()) if d != dim]
    norm = torch.linalg.vector_norm(self_p, 1.0, reduce_dims, keepdim=True)
    invnorm = (norm + 1e-7).reciprocal()
    factor = invnorm * float(maxnorm)
    scaled = factor * (self_t - self_p * invnorm * l1_norm_jvp(self_p, self_t, reduce_dims, True))
    return torch.where(norm > float(maxnorm), scaled, self_t)


def dist_l1_jvp(self_p, self_t, other_p, other_t):
    """Tangent of dist with p = 1: upstream's (the 1-norm tangent of self - other), out of place."""
    difference_t = other_t.neg() if self_t is None else self_t if other_t is None else self_t - other_t
    return l1_norm_jvp(self_p - other_p, difference_t, None, False)
