"""Samples for linear-algebra entries."""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for


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
