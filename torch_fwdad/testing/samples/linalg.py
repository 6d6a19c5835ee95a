"""Samples for linear-algebra entries."""

import torch

from . import ErrorSample, Sample, make, samples_for


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
    for upper in (False, True):
        yield Sample((make(3, 3, dtype=dtype, device=device), upper), desc=f"3x3 upper={upper}", wrapper=_hermitian_pd)
        yield Sample((make(2, 4, 4, dtype=dtype, device=device), upper), desc=f"batched upper={upper}", wrapper=_hermitian_pd)
        yield Sample((make(2, 0, 0, dtype=dtype, device=device), upper), desc=f"empty upper={upper}", wrapper=_hermitian_pd)
    yield Sample((make(4, 4, dtype=dtype, device=device).mT, False), desc="transposed", wrapper=_hermitian_pd)
    yield Sample((make(1, 1, dtype=dtype, device=device), False), desc="1x1", wrapper=_hermitian_pd)


def _reflectors(*shape, dtype, device):
    """geqrf's output, as OpInfo's ormqr samples use (the checks then move tau freely)."""
    return torch.geqrf(make(*shape, dtype=dtype, device=device, low=-1, high=1))


def _ormqr_errors(device):
    reflectors, tau = torch.geqrf(torch.randn(4, 3, dtype=torch.float64, device=device))
    yield ErrorSample((reflectors, tau, torch.randn(3, 2, dtype=torch.float64, device=device)), desc="rows of other != rows of input")


@samples_for("aten::ormqr", dtypes=(torch.float64, torch.complex128), errors=_ormqr_errors)
def ormqr_samples(dtype, device):
    for left in (True, False):
        for transpose in (False, True):
            reflectors, tau = _reflectors(4, 3, dtype=dtype, device=device)
            other = make(4, 2, dtype=dtype, device=device) if left else make(2, 4, dtype=dtype, device=device)
            yield Sample((reflectors, tau, other, left, transpose), desc=f"tall left={left} transpose={transpose}")
    reflectors, tau = _reflectors(2, 2, 4, dtype=dtype, device=device)  # more columns than reflectors
    yield Sample((reflectors, tau, make(2, 2, 3, dtype=dtype, device=device), True, False), desc="batched wide")
    reflectors, tau = _reflectors(3, 0, dtype=dtype, device=device)
    yield Sample((reflectors, tau, make(3, 2, dtype=dtype, device=device), True, True), desc="no reflectors")
