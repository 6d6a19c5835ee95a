"""Samples for linear-algebra entries."""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for, xfail


def _hermitian_pd(op, A, *args, **kwargs):
    # cholesky reads one triangle of a Hermitian positive-definite matrix; make one, as
    # OpInfo's gradcheck_wrapper does, so finite differences see the same function.
    n = A.shape[-1]
    eye = torch.eye(n, dtype=A.dtype, device=A.device)
    return op(A @ A.transpose(-2, -1).conj_physical() + n * eye, *args, **kwargs)


def _cholesky_errors(device):
    yield ErrorSample((torch.ones(2, 3, dtype=torch.float64, device=device),), desc="not square")
    yield ErrorSample((-torch.eye(3, dtype=torch.float64, device=device),), desc="not positive definite")


@samples_for("aten::cholesky", dtypes=(torch.float64, torch.complex128), errors=_cholesky_errors)
def cholesky_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for upper in (False, True):
        yield Sample((make_arg(3, 3), upper), desc=f"3x3 upper={upper}", wrapper=_hermitian_pd)
        yield Sample((make_arg(2, 4, 4), upper), desc=f"batched upper={upper}", wrapper=_hermitian_pd)
        yield Sample((make_arg(2, 0, 0), upper), desc=f"empty upper={upper}", wrapper=_hermitian_pd)
    yield Sample((make_arg(4, 4).mT, False), desc="transposed", wrapper=_hermitian_pd)
    yield Sample((make_arg(1, 1), False), desc="1x1", wrapper=_hermitian_pd)


def _reflectors(*shape, dtype, device):
    """geqrf's output, as OpInfo's ormqr samples use (the checks then move tau freely)."""
    return torch.geqrf(make_tensor(*shape, dtype=dtype, device=device, low=-1, high=1))


def _ormqr_errors(device):
    reflectors, tau = torch.geqrf(torch.randn(4, 3, dtype=torch.float64, device=device))
    yield ErrorSample((reflectors, tau, torch.randn(3, 2, dtype=torch.float64, device=device)), desc="rows of other != rows of input")


@samples_for("aten::ormqr", dtypes=(torch.float64, torch.complex128), errors=_ormqr_errors)
def ormqr_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for left in (True, False):
        for transpose in (False, True):
            reflectors, tau = _reflectors(4, 3, dtype=dtype, device=device)
            other = make_arg(4, 2) if left else make_arg(2, 4)
            yield Sample((reflectors, tau, other, left, transpose), desc=f"tall left={left} transpose={transpose}")
    reflectors, tau = _reflectors(2, 2, 4, dtype=dtype, device=device)  # more columns than reflectors
    yield Sample((reflectors, tau, make_arg(2, 2, 3), True, False), desc="batched wide")
    reflectors, tau = _reflectors(3, 0, dtype=dtype, device=device)
    yield Sample((reflectors, tau, make_arg(3, 2), True, True), desc="no reflectors")


# det, slogdet and solve: the entries replace upstream's formula only under an outer
# derivative (forward-over-forward, forward-over-reverse run them); inputs well away from
# singular, where finite differences of the tangent are meaningful.
def _well_conditioned(*shape, dtype, device):
    n = shape[-1]
    return make_tensor(*shape, dtype=dtype, device=device, low=-1, high=1) + 2 * torch.eye(n, dtype=dtype, device=device)


def _square_errors(device):
    yield ErrorSample((torch.ones(2, 3, dtype=torch.float64, device=device),), desc="not square")


def _square_matrices(dtype, device):
    matrix = partial(_well_conditioned, dtype=dtype, device=device)
    yield Sample((matrix(3, 3),), desc="3x3")
    yield Sample((matrix(2, 4, 4),), desc="batched")
    yield Sample((matrix(4, 4).mT,), desc="transposed")


@samples_for("aten::_linalg_det", dtypes=(torch.float64, torch.complex128), errors=_square_errors)
def det_samples(dtype, device):
    yield from _square_matrices(dtype, device)
    yield Sample((_well_conditioned(1, 1, dtype=dtype, device=device),), desc="1x1")
    yield Sample((make_tensor(3, 3, dtype=dtype, device=device),), desc="general")


@samples_for("aten::_linalg_slogdet", dtypes=(torch.float64, torch.complex128), errors=_square_errors)
def slogdet_samples(dtype, device):
    yield from _square_matrices(dtype, device)
    yield Sample((-_well_conditioned(3, 3, dtype=dtype, device=device),), desc="negative determinant")


def _solve_errors(device):
    A = torch.eye(3, dtype=torch.float64, device=device)
    yield ErrorSample((A, torch.ones(4, 2, dtype=torch.float64, device=device)), desc="rows of B != size of A")
    yield ErrorSample((torch.zeros(3, 3, dtype=torch.float64, device=device), torch.ones(3, 2, dtype=torch.float64, device=device)),
                      dict(check_errors=True), desc="singular, check_errors")


# float64 only (CI time): solve_jvp has no complex-specific step; det and slogdet check complex.
@samples_for("aten::_linalg_solve_ex", errors=_solve_errors)
def solve_samples(dtype, device):
    matrix = partial(_well_conditioned, dtype=dtype, device=device)
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((matrix(3, 3), make_arg(3, 2)), desc="left")
    yield Sample((matrix(3, 3), make_arg(2, 3)), dict(left=False), desc="right")
    yield Sample((matrix(3, 3), make_arg(3)), desc="vector")
    yield Sample((matrix(2, 3, 3), make_arg(2, 3)), desc="batched vector")
    # Plain PyTorch's vmap of linalg.solve gives a wrong primal when B broadcasts over A's batch
    # (torch 2.13: vmap(torch.linalg.solve) of A (b, 2, 3, 3), B (b, 3, 2) differs from a loop).
    yield Sample((matrix(2, 3, 3), make_arg(3, 2)), desc="B broadcast over the batch",
                 xfails=xfail("plain PyTorch's vmap of _linalg_solve_ex computes a wrong primal when B "
                              "broadcasts over A's batch dims (not a tangent: the primal differs)", "vmap_jvp"))
    yield Sample((matrix(4, 4).mT, make_arg(4, 1)), dict(check_errors=True), desc="transposed, check_errors")


# float64 only (CI time): the helper's complex case is checked through ormqr's samples.
@samples_for("aten::linalg_householder_product")
def householder_product_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device, low=-1, high=1)
    yield Sample((make_arg(5, 3), make_arg(3)), desc="tall")
    yield Sample((make_arg(4, 4), make_arg(4)), desc="square")
    yield Sample((make_arg(5, 3), make_arg(2)), desc="fewer reflectors than columns")
    yield Sample((make_arg(2, 4, 3), make_arg(2, 3)), desc="batched")


def _symmetric(op, A, *args, **kwargs):
    # eigh reads one triangle; finite differences must move a symmetric matrix (OpInfo's wrapper)
    return op(A + A.mT, *args, **kwargs)


# float64 only: a complex eigenvector's phase is a gauge finite differences cannot follow.
@samples_for("aten::_linalg_eigh")
def eigh_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(4, 4),), desc="4x4", wrapper=_symmetric)
    yield Sample((make_arg(2, 3, 3), "U"), desc="batched upper", wrapper=_symmetric)


@samples_for("aten::linalg_vector_norm", dtypes=(torch.float64, torch.complex128))
def vector_norm_samples(dtype, device):
    # ord 1 is the corrected case; ord 2 and inf stay upstream's (the when condition)
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(3, 5), 1, [1]), desc="ord 1, one dim")
    yield Sample((make_arg(2, 3, 4), 1, [0, 2], True), desc="ord 1, two dims, keepdim")
    yield Sample((make_arg(6), 1), desc="ord 1, every dim")
    yield Sample((make_arg(4, 3).mT, 1.0, [0]), desc="ord 1.0, non-contiguous")
    yield Sample((make_arg(3, 5), 2, [1]), desc="ord 2 (upstream)")
    yield Sample((make_arg(3, 5), float("inf"), [1]), desc="ord inf (upstream)")


@samples_for("aten::renorm")
def renorm_samples(dtype, device):
    # p 1 is the corrected case, p 2 stays upstream's; rows' 1-norms lie well away from
    # maxnorm (renorm's kink), some above it and some below
    rows = torch.tensor([[3.0, -1.5, 0.5], [0.2, 0.3, -0.1], [-1.0, 2.0, 1.2], [0.4, -0.2, 0.25]], dtype=dtype, device=device)
    yield Sample((rows, 1, 0, 1.5), desc="p 1, dim 0")
    yield Sample((rows.mT, 1, -1, 1.5), desc="p 1, last dim, non-contiguous")
    yield Sample((rows.reshape(2, 2, 3), 1.0, 1, 2.0), desc="p 1.0, middle dim")
    yield Sample((rows, 2, 0, 1.5), desc="p 2 (upstream)")


# float64 only (CI time): the complex 1-norm tangent is checked through linalg_vector_norm's samples.
@samples_for("aten::dist")
def dist_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(3, 4), make_arg(3, 4), 1), desc="p 1")
    yield Sample((make_arg(3, 4), make_arg(4), 1.0), desc="p 1.0, broadcast")
    yield Sample((make_arg(2, 3), make_arg(2, 3), 2), desc="p 2 (upstream)")
