"""Samples for sparse @ dense products: the sparse operand is a constant (not in `diff`).

A sparse tensor cannot carry a tangent in PyTorch (docs/out_of_reach.md), so
every sample names its differentiable (strided) arguments in `diff`.
"""

import warnings

from functools import partial

import torch
from torch.testing import make_tensor

from . import FWD_OVER_REV, REV_OVER_FWD, ErrorSample, Sample, samples_for, xfail

# torch.func cannot wrap a CSR tensor: the checks built on torch.func.jvp or vmap cannot run
# CSR samples; tests/test_sparse_ops.py covers what they would.
CSR_UNDER_TORCH_FUNC = xfail(
    "torch.func.jvp cannot see a sparse CSR tensor: functorch's wrapper reads the strides CSR "
    "lacks ('Sparse CSR tensors do not have strides'), in plain PyTorch too; "
    "tests/test_sparse_ops.py checks these kernels by gradcheck and reverse-over-forward",
    "jvp_vjp", "partial", "second_order",
) | xfail("the reverse-over-forward checks' reference, finite differences of the tangent, is taken through "
          "torch.func.jvp, which cannot see a sparse CSR tensor ('Sparse CSR tensors do not have strides'), in plain "
          "PyTorch too; tests/test_sparse_ops.py checks the gradient of the tangent w.r.t. the tangent against reverse mode",
          *REV_OVER_FWD) | xfail("vmap cannot batch a sparse CSR tensor ('Sparse CSR tensors do not have strides'), in plain PyTorch too",
          "vmap_jvp")


def sparse_matrix(rows, cols, *, dtype, device, empty_row=None):
    """A rows x cols matrix with about half its entries zero (and one empty row)."""
    dense = make_tensor(rows, cols, dtype=dtype, device=device, low=0.5, high=2)
    keep = torch.arange(rows * cols, device=device).view(rows, cols) % 3 != 1
    dense = dense * keep
    if empty_row is not None:
        dense[empty_row] = 0
    return dense


def to_csr(dense):
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return dense.to_sparse_csr()


def _csr_sample(args, kwargs, desc, diff, xfails=None):
    return Sample(args, kwargs, desc + " (csr)", diff=diff, xfails=CSR_UNDER_TORCH_FUNC | (xfails or {}))


def _sparse_addmm_errors(device):
    mat1 = sparse_matrix(3, 4, dtype=torch.float64, device=device).to_sparse()
    dense = partial(make_tensor, dtype=torch.float64, device=device)
    yield ErrorSample((dense(3, 2), mat1, dense(5, 2)),
                      desc="inner sizes differ")


@samples_for("aten::_sparse_addmm", dtypes=(torch.float64, torch.complex128), errors=_sparse_addmm_errors)
def sparse_addmm_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    mat1 = sparse_matrix(4, 5, dtype=dtype, device=device, empty_row=2)
    self, mat2 = make_arg(4, 3), make_arg(5, 3)
    scale = {"beta": 0.5, "alpha": -1.5}
    no_sparse_zero_tangent = xfail(
        "forward mode over the backward needs a zero tangent for the sparse operand, which PyTorch "
        "cannot build ('_efficientzerotensor' has no sparse kernel; CSR: no strides for functorch)", *FWD_OVER_REV)
    yield Sample((self, mat1.to_sparse(), mat2), scale, "coo mat1", diff=(0, 2), xfails=no_sparse_zero_tangent)
    yield Sample((self, mat1.to_sparse(), mat2), {}, "coo mat1, default scales", diff=(0, 2), xfails=no_sparse_zero_tangent)
    yield Sample((self[0], mat1.to_sparse(), mat2), scale, "coo mat1, self broadcast", diff=(0, 2),
                 xfails=no_sparse_zero_tangent)
    yield Sample((self, mat1.to_sparse().coalesce(), mat2.mT.contiguous().mT), scale, "coalesced, mat2 transposed", diff=(0, 2),
                 xfails=no_sparse_zero_tangent)
    yield Sample((self, mat1, mat2), scale, "strided mat1 (dense addmm)", diff=(0, 1, 2))
    if not dtype.is_complex:  # sparse CSR @ dense has no complex CPU kernel
        yield _csr_sample((self, to_csr(mat1), mat2), scale, "csr mat1", diff=(0, 2), xfails=no_sparse_zero_tangent)


@samples_for("aten::_sparse_mm_reduce_impl", xfails=xfail(
    "PyTorch's _sparse_mm_reduce_impl_backward has no forward formula (its NotImplementedError)", "fwd_over_rev_forward_ad",
) | xfail("torch.func cannot wrap the sparse CSR operand ('Sparse CSR tensors do not have strides'), in plain PyTorch too",
          "fwd_over_rev_func"))
def sparse_mm_reduce_samples(dtype, device):
    # CSR only, real only: the CPU kernel (torch.sparse.mm with reduce) has no other
    # layouts or dtypes.
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    self = to_csr(sparse_matrix(5, 4, dtype=dtype, device=device, empty_row=3))
    for reduce in ("sum", "mean", "amax", "amin"):
        other = make_arg(4, 3)
        yield _csr_sample((self, other, reduce), {}, f"{reduce}, one empty row", diff=(1,))
