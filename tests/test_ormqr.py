"""ormqr: the OpInfo entry's own samples (geqrf outputs) pass forward-mode gradcheck.

The check matrix covers our own samples (tests/test_formulas.py); this runs PyTorch's,
as the coverage report does, in fast mode to stay within seconds.
"""

import pytest
import torch

import torch_fwdad  # noqa: F401
from torch.testing._internal.common_methods_invocations import op_db

ORMQR = next(op for op in op_db if op.name == "ormqr")


def _forward_gradcheck(sample):
    inputs = (sample.input, *sample.args)

    def fn(*tensors):
        return ORMQR(*tensors, **sample.kwargs)

    assert torch.autograd.gradcheck(fn, inputs, check_forward_ad=True, check_backward_ad=False,
                                    check_batched_forward_grad=True, check_undefined_grad=False, fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_ormqr_opinfo_samples(dtype):
    samples = list(ORMQR.sample_inputs("cpu", dtype, requires_grad=True))
    for sample in samples[::3] if dtype == torch.float64 else samples[::11]:  # every batch shape, side and transpose
        _forward_gradcheck(sample)


def test_ormqr_tangent_matches_reverse_mode():
    # every input differentiated, as PyTorch's ormqr_backward does
    reflectors, tau = torch.geqrf(torch.randn(5, 3, dtype=torch.float64))
    other = torch.randn(5, 2, dtype=torch.float64)
    inputs = (reflectors, tau, other)
    tangents = tuple(torch.randn_like(x) for x in inputs)
    _, forward = torch.func.jvp(torch.ormqr, inputs, tangents)
    _, reverse = torch.autograd.functional.jvp(torch.ormqr, inputs, tangents)
    torch.testing.assert_close(forward, reverse)
