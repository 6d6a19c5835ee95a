"""Samples for the _foreach_* overloads (lists of small tensors; the output list as a tuple)."""

from functools import partial

from torch.testing import make_tensor

from . import Sample, samples_for, xfail

NO_BATCHING_RULE = xfail(
    "PyTorch has no batching rule for _foreach_* ops: vmap of the primal alone fails the same way", "vmap_jvp")


def _as_tuple(op, *args):
    return tuple(op(*args))


@samples_for("aten::_foreach_mm", xfails=NO_BATCHING_RULE)
def foreach_mm_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    mats = [make_arg(2, 3), make_arg(1, 2)]
    mat2s = [make_arg(3, 2), make_arg(2, 4, noncontiguous=True)]
    yield Sample((mats, mat2s), desc="two products", wrapper=_as_tuple)


@samples_for("aten::_foreach_pow.ScalarAndTensor", xfails=NO_BATCHING_RULE)
def foreach_pow_scalar_and_tensor_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    exponents = [make_arg(3, low=-2, high=2), make_arg(2, 2, low=-2, high=2)]
    yield Sample((1.7, exponents), desc="positive base", wrapper=_as_tuple)
    yield Sample((0.5, exponents[:1]), desc="base below one", wrapper=_as_tuple)
