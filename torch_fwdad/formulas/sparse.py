"""Sparse matrix products whose differentiable operands are strided (dense) tensors.

PyTorch's forward AD (torch 2.13) cannot attach a tangent to a sparse tensor: making a
sparse tensor dual aliases it and compares storages, which sparse layouts do not have
(docs/out_of_reach.md). So the sparse operand of these products is a constant,
and only the dense operands carry tangents; the output is dense.
"""

from __future__ import annotations

import torch

__all__ = ["sparse_addmm_self_jvp", "sparse_addmm_mat1_jvp", "sparse_addmm_mat2_jvp", "sparse_mm_reduce_jvp"]


def sparse_addmm_self_jvp(self_t, beta, result):
    """beta · self_t, broadcast to the output as the kernel broadcasts self."""
    return (self_t * beta).expand_as(result)


def sparse_addmm_mat1_jvp(mat1_t, mat2, alpha):
    """alpha · mat1_t @ mat2: reached only when mat1 is strided (the kernel accepts it)."""
    return torch.mm(mat1_t, mat2) * alpha


def sparse_addmm_mat2_jvp(mat1, mat2_t, alpha, result):
    """alpha · mat1 @ mat2_t with the kernel itself, so a sparse mat1 stays sparse."""
    zero = result.new_zeros(())
    return torch.ops.aten._sparse_addmm(zero, mat1, mat2_t, beta=0, alpha=alpha)


def sparse_mm_reduce_jvp(self, other, other_t, reduce, arg_out):
    """Tangent of out[i, j] = reduce_k self[i, k] · other[k, j] (k over row i's nonzeros).

    sum and mean are linear in `other`: the kernel applied to the tangent. amax and amin
    pick one nonzero per output element, the same one PyTorch's backward routes the
    gradient to (`arg_out`, a position in self.values(); nnz for an empty row, whose
    output is 0 and gets a zero tangent).
    """
    if reduce in ("sum", "mean"):
        return torch.ops.aten._sparse_mm_reduce_impl(self, other_t, reduce)[0]
    if arg_out.numel() == 0 and other_t.numel() != 0:
        arg_out = _selected_nonzeros(self, other, reduce)
    return _picked_product(self, other_t, arg_out)


def _selected_nonzeros(self, other, reduce):
    """arg_out as the kernel computes it: it fills it only when `other` requires grad."""
    with torch.enable_grad():
        probe = other.detach().requires_grad_()
        return torch.ops.aten._sparse_mm_reduce_impl(self, probe, reduce)[1]


def _picked_product(self, other_t, arg_out):
    """self.values()[arg] · other_t[col[arg], j], zero where the row is empty (arg == nnz)."""
    values, columns = self.values(), self.col_indices()
    if values.numel() == 0:
        return other_t.new_zeros(arg_out.shape)
    filled = arg_out < values.numel()
    picked = arg_out.clamp(max=values.numel() - 1)
    coefficient = values[picked].where(filled, 0)
    return coefficient * other_t.gather(0, columns[picked])
