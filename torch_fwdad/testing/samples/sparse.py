"""Samples for sparse @ dense products: the sparse operand is a constant (not in `diff`).

A sparse tensor cannot carry a tangent in PyTorch (docs/out_of_reach.md), so
every sample names its differentiable (strided) arguments in `diff`.
"""

import warnings

import torch

from . import ErrorSample, Sample, make, samples_for

# CSR samples end their description in "(csr)": the checks built on torch.func.jvp cannot
# run them (known_failures.py says why); tests/test_sparse_ops.py covers what they would.


def sparse_matrix(rows, cols, *, dtype, device, empty_row=None):
    """A rows x cols matrix with about half its entries zero (and one empty row)."""
    dense = make(rows, cols, dtype=dtype, device=device, low=0.5, high=2)
    keep = torch.arange(rows * cols, device=device).view(rows, cols) % 3 != 1
    dense = dense * keep
    if empty_row is not None:
        dense[empty_row] = 0
    return dense


def to_csr(dense):
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return dense.to_sparse_csr()


def _csr_sample(args, kwargs, desc, diff):
    return Sample(args, kwargs, desc + " (csr)", diff=diff)


def _sparse_addmm_errors(device):
    mat1 = sparse_matrix(3, 4, dtype=torch.float64, device=device).to_sparse()
    yield ErrorSample((make(3, 2, dtype=torch.float64, device=device), mat1, make(5, 2, dtype=torch.float64, device=device)),
                      desc="inner sizes differ")


@samples_for("aten::_sparse_addmm", dtypes=(torch.float64, torch.complex128), errors=_sparse_addmm_errors)
def sparse_addmm_samples(dtype, device):
    mat1 = sparse_matrix(4, 5, dtype=dtype, device=device, empty_row=2)
    self, mat2 = make(4, 3, dtype=dtype, device=device), make(5, 3, dtype=dtype, device=device)
    scale = {"beta": 0.5, "alpha": -1.5}
    yield Sample((self, mat1.to_sparse(), mat2), scale, "coo mat1", diff=(0, 2))
    yield Sample((self, mat1.to_sparse(), mat2), {}, "coo mat1, default scales", diff=(0, 2))
    yield Sample((self[0], mat1.to_sparse(), mat2), scale, "coo mat1, self broadcast", diff=(0, 2))
    yield Sample((self, mat1.to_sparse().coalesce(), mat2.mT.contiguous().mT), scale, "coalesced, mat2 transposed", diff=(0, 2))
    yield Sample((self, mat1, mat2), scale, "strided mat1 (dense addmm)", diff=(0, 1, 2))
    if not dtype.is_complex:  # sparse CSR @ dense has no complex CPU kernel
        yield _csr_sample((self, to_csr(mat1), mat2), scale, "csr mat1", diff=(0, 2))


@samples_for("aten::_sparse_mm_reduce_impl")
def sparse_mm_reduce_samples(dtype, device):
    # CSR only, real only: the CPU kernel (torch.sparse.mm with reduce) has no other
    # layouts or dtypes.
    self = to_csr(sparse_matrix(5, 4, dtype=dtype, device=device, empty_row=3))
    for reduce in ("sum", "mean", "amax", "amin"):
        other = make(4, 3, dtype=dtype, device=device)
        yield _csr_sample((self, other, reduce), {}, f"{reduce}, one empty row", diff=(1,))
