"""Samples for the indexed reductions: index_reduce, scatter_reduce.two.

Neither supports complex dtypes with autograd (index_reduce's kernel has none;
scatter_reduce "does not support automatic differentiation for outputs with complex
dtype"). Samples cover duplicate indices, both include_self, zeros for prod (two in one
group too) and two-way ties for amax/amin: finite differences along one coordinate see
half of a two-way tie, which is the even split PyTorch's backward uses.
"""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, FWD_OVER_REV, REV_OVER_FWD, Sample, gradient_kink_at, samples_for, tangent_kink_at, xfail

TIE = tangent_kink_at("a tie of the max/min") | gradient_kink_at("a tie of the max/min")
PROD_ZEROS = xfail(
    "PyTorch's backward of prod divides by the input where it is nonzero and switches to another "
    "formula at zeros: the derivative of that switch is not the Hessian there, while finite "
    "differences see the smooth polynomial (measured with torch.func as well as forward_ad)", *FWD_OVER_REV)
SRC_LARGER_THAN_INDEX = xfail(
    "upstream's scatter_reduce backward rejects a src larger than index (invalid gradient "
    "shape); forward mode handles it", "jvp_vjp", "unchanged")


def _long(values, device):
    return torch.tensor(values, dtype=torch.long, device=device)


def _with_zeros(x, positions):
    x = x.clone()
    for position in positions:
        x[position] = 0
    return x


def _with_ties(self_, source, self_ties, source_ties, value):
    """Two members of a group set equal to `value`: ±20, beyond every make_tensor value, so the tie is the max/min."""
    self_, source = self_.clone(), source.clone()
    for self_pos, source_pos in self_ties:
        source[source_pos] = self_[self_pos] = value
    for first, second in source_ties:
        source[first] = source[second] = value
    return self_, source


def _index_reduce_errors(device):
    x = torch.ones(5, 3, dtype=torch.float64, device=device)
    index = _long([0, 1], device)
    yield ErrorSample((x, 0, index, torch.ones(2, 3, dtype=torch.float64, device=device), "sum"), desc="reduce sum")
    yield ErrorSample((x, 0, _long([0, 7], device), torch.ones(2, 3, dtype=torch.float64, device=device), "prod"), desc="index out of range")
    yield ErrorSample((x, 0, index, torch.ones(3, 3, dtype=torch.float64, device=device), "mean"), desc="source size mismatch")


@samples_for("aten::index_reduce", errors=_index_reduce_errors)
def index_reduce_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)

    index = _long([0, 2, 0, 4], device)  # 0 twice, 1 and 3 never
    for reduce in ("prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            flags = dict(include_self=include_self)
            yield Sample((make_arg(5, 3), 0, index, make_arg(4, 3), reduce), flags, desc=f"{reduce} include_self={include_self}")
            yield Sample((make_arg(3, 5).mT, 1, _long([1, 1, 2], device), make_arg(3, 5, noncontiguous=True).mT, reduce), flags,
                         desc=f"{reduce} dim=1 transposed include_self={include_self}")
    for include_self in (True, False):
        flags = dict(include_self=include_self)
        # self[0, 0] zero; source rows 0 and 2 both go to row 0: two zeros in group (0, 1)
        self_ = _with_zeros(make_arg(5, 3), [(0, 0), (4, 2)])
        source = _with_zeros(make_arg(4, 3), [(0, 1), (2, 1), (1, 2), (3, 0)])
        yield Sample((self_, 0, index, source, "prod"), flags, desc=f"prod zeros include_self={include_self}",
                     xfails=PROD_ZEROS)
    self_, source = _with_ties(make_arg(5, 3), make_arg(4, 3), self_ties=[((0, 0), (2, 0))], source_ties=[], value=20.0)
    yield Sample((self_, 0, index, source, "amax"), desc="amax tie self-source", xfails=TIE)
    for include_self in (True, False):
        self_, source = _with_ties(make_arg(5, 3), make_arg(4, 3), self_ties=[], source_ties=[((0, 1), (2, 1))], value=-20.0)
        yield Sample((self_, 0, index, source, "amin"), dict(include_self=include_self),
                     desc=f"amin tie source-source include_self={include_self}", xfails=TIE)
    yield Sample((make_arg(5, 3), 0, _long([], device), make_arg(0, 3), "prod"), desc="empty index")
    yield Sample((make_arg(4), 0, _long([3, 3, 1], device), make_arg(3), "mean"), dict(include_self=False), desc="1-d")


def _scatter_reduce_errors(device):
    x = torch.ones(5, 3, dtype=torch.float64, device=device)
    index = _long([[0, 1, 2]], device)
    yield ErrorSample((x, 0, index, torch.ones(1, 3, dtype=torch.float64, device=device), "median"), desc="unknown reduce")
    yield ErrorSample((x, 0, _long([[0, 9, 2]], device), torch.ones(1, 3, dtype=torch.float64, device=device), "prod"), desc="index out of range")


@samples_for("aten::scatter_reduce.two", errors=_scatter_reduce_errors)
def scatter_reduce_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)

    index = _long([[0, 1, 0], [0, 2, 2], [4, 1, 0], [0, 2, 4]], device)  # duplicates in every column
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            flags = dict(include_self=include_self)
            yield Sample((make_arg(5, 3), 0, index, make_arg(4, 3), reduce), flags, desc=f"{reduce} include_self={include_self}")
    for include_self in (True, False):
        flags = dict(include_self=include_self)
        self_ = _with_zeros(make_arg(5, 3), [(0, 0), (2, 2)])
        # column 0: src rows 0 and 1 both go to row 0 (two zeros there with self's); column 2:
        # row 1 zero goes to row 2, where self is zero too
        src = _with_zeros(make_arg(4, 3), [(0, 0), (1, 0), (1, 2), (2, 1)])
        yield Sample((self_, 0, index, src, "prod"), flags, desc=f"prod zeros include_self={include_self}",
                     xfails=PROD_ZEROS)
        yield Sample((make_arg(3, 5).mT, 1, index.mT.clamp_max(2), make_arg(3, 4, noncontiguous=True), "prod"), flags,
                     desc=f"prod dim=1 transposed include_self={include_self}")
    # self[0, 0] ties src[0, 0] (sent to row 0); src[1, 1] and src[3, 1] are both sent to row 2
    self_, src = _with_ties(make_arg(5, 3), make_arg(4, 3), self_ties=[((0, 0), (0, 0))], source_ties=[((1, 1), (3, 1))], value=20.0)
    yield Sample((self_, 0, index, src, "amax"), desc="amax ties", xfails=TIE)
    yield Sample((make_arg(5, 3), 0, index[:3, :2], make_arg(4, 3), "prod"), desc="src larger than index",
                 xfails=SRC_LARGER_THAN_INDEX | xfail(
                     "PyTorch's backward of scatter_reduce rejects a src larger than index (size mismatch), in "
                     "plain PyTorch too", *FWD_OVER_REV))
    upstream_amax = xfail(
        "with `when: reduce == \"prod\"`, amax runs PyTorch's own forward formula, which rejects a src "
        "larger than index (size mismatch) exactly as plain PyTorch does",
        "gradcheck", "partial", "second_order", "output_tangents", "vmap_jvp", *FWD_OVER_REV, *REV_OVER_FWD)
    yield Sample((make_arg(5, 3), 0, index[:3, :2], make_arg(4, 3), "amax"), desc="amax src larger than index",
                 xfails=SRC_LARGER_THAN_INDEX | upstream_amax)
    yield Sample((make_arg(4), 0, _long([3, 3, 1], device), make_arg(3), "prod"), desc="1-d")
    yield Sample((make_arg(2, 3), 0, torch.zeros(0, 3, dtype=torch.long, device=device), make_arg(0, 3), "prod"), desc="empty index")
