"""Report-only samples for derivatives-table gaps that are CompositeImplicitAutograd on CPU.

torch's table lists these overloads (for their nested-tensor or other backends), but on
CPU they decompose into ops with forward formulas before autograd sees them, so forward
AD already works without a formula. No derivatives.yaml entry goes with them; the coverage
report measures them, and tests/test_formulas.py checks that they pass without torch_fwdad.
"""

from functools import partial

import torch
from torch.testing import make_tensor

from . import Sample, samples_for, xfail

CIA = "CompositeImplicitAutograd"


def _as_tuple(op, *args, **kwargs):
    return tuple(op(*args, **kwargs))


@samples_for("aten::chunk", upstream_covers=CIA)
def chunk_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(4, 3), 2), desc="4x3 into 2", wrapper=_as_tuple)
    yield Sample((make_arg(5, 3), 3, 0), desc="uneven 5 into 3", wrapper=_as_tuple)
    yield Sample((make_arg(2, 6, noncontiguous=True), 4, 1), desc="dim 1, non-contiguous", wrapper=_as_tuple)


@samples_for("aten::linear", upstream_covers=CIA)
def linear_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(2, 3), make_arg(4, 3)), desc="no bias")
    yield Sample((make_arg(2, 3), make_arg(4, 3), make_arg(4)), desc="bias")
    yield Sample((make_arg(2, 5, 3), make_arg(4, 3), make_arg(4)), desc="batched input, bias")


@samples_for("aten::matmul", upstream_covers=CIA)
def matmul_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(2, 3), make_arg(3, 4)), desc="matrix x matrix")
    yield Sample((make_arg(3), make_arg(3)), desc="vector x vector")
    yield Sample((make_arg(2, 2, 3), make_arg(3)), desc="batched x vector")


@samples_for("aten::max_pool2d", upstream_covers=CIA, xfails=xfail(
    "gradcheck's batched forward-grad check runs the legacy vmap, which has no batching rule "
    "for flatten.using_ints (inside max_pool2d's CPU decomposition); forward AD itself works", "gradcheck"))
def max_pool2d_samples(dtype, device):
    # distinct values: no ties, where the max is not differentiable
    def distinct(*shape):
        return torch.randperm(torch.Size(shape).numel()).to(dtype=dtype, device=device).reshape(shape) / 7

    yield Sample((distinct(1, 4, 4), [2, 2]), desc="2x2 kernel")
    yield Sample((distinct(2, 1, 5, 5), [3, 3], [2, 2], [1, 1]), desc="stride 2, padding 1")
    yield Sample((distinct(1, 2, 5, 5), [2, 2], [1, 1], [0, 0], [2, 2], True), desc="dilation 2, ceil_mode")
