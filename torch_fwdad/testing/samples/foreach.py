"""Samples for the _foreach_* overloads (lists of small tensors; the output list as a tuple)."""

from . import Sample, make, samples_for


def _as_tuple(op, *args):
    return tuple(op(*args))


@samples_for("aten::_foreach_mm")
def foreach_mm_samples(dtype, device):
    mats = [make(2, 3, dtype=dtype, device=device), make(1, 2, dtype=dtype, device=device)]
    mat2s = [make(3, 2, dtype=dtype, device=device), make(2, 4, dtype=dtype, device=device, noncontiguous=True)]
    yield Sample((mats, mat2s), desc="two products", wrapper=_as_tuple)


@samples_for("aten::_foreach_pow.ScalarAndTensor")
def foreach_pow_scalar_and_tensor_samples(dtype, device):
    exponents = [make(3, dtype=dtype, device=device, low=-2, high=2), make(2, 2, dtype=dtype, device=device, low=-2, high=2)]
    yield Sample((1.7, exponents), desc="positive base", wrapper=_as_tuple)
    yield Sample((0.5, exponents[:1]), desc="base below one", wrapper=_as_tuple)
