"""Samples for the distance entries: _cdist_forward, _euclidean_dist, _pdist_forward.

None of them supports complex dtypes ("cdist only supports floating-point dtypes").
"""

import math
from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, gradient_kink_at, samples_for, tangent_kink_at, xfail

P_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, math.inf)
COMPUTE_MODES = (None, 0, 1, 2)  # if necessary (default), if necessary, use mm, do not use mm

# A zero distance is a kink of every p-norm: the first-order tangent jumps there, so
# forward-over-forward cannot match finite differences of it.
ZERO_DISTANCE = tangent_kink_at("a zero distance (a kink of the norm)") | gradient_kink_at("a zero distance")


def _with_duplicates(x1, x2):
    """x2 whose first row equals x1's first row: one zero distance."""
    x2 = x2.clone()
    x2[..., 0, :] = x1[..., 0, :]
    return x2


def _cdist_errors(device):
    x = torch.ones(3, 4, dtype=torch.float64, device=device)
    yield ErrorSample((x, torch.ones(2, 5, dtype=torch.float64, device=device), 2.0, None), desc="feature sizes differ")
    yield ErrorSample((x, x, -1.0, None), desc="negative p")
    yield ErrorSample((x, x, 2.0, 3), desc="unknown compute_mode")


@samples_for("aten::_cdist_forward", errors=_cdist_errors)
def cdist_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)

    for p in P_VALUES:
        yield Sample((make_arg(3, 4), make_arg(5, 4), p, None), desc=f"p={p}")
    for mode in COMPUTE_MODES:
        # 26 rows: past the 25-row threshold where the default mode switches to matmuls
        yield Sample((make_arg(26, 3), make_arg(2, 3), 2.0, mode), desc=f"26 rows p=2 mode={mode}")
    for p in (1.0, 2.0, math.inf, 0.5):
        yield Sample((make_arg(2, 1, 3, 4), make_arg(3, 2, 4), p, None), desc=f"broadcast batch p={p}")
    for p in (0.5, 1.0, 2.0, 3.0, math.inf):
        x1 = make_arg(3, 4)
        yield Sample((x1, _with_duplicates(x1, make_arg(2, 4)), p, 2), desc=f"zero distance p={p}", xfails=ZERO_DISTANCE)
    x1 = make_arg(3, 4)
    x2 = make_arg(2, 4)
    x2[0, 1] = x1[1, 1]  # one coordinate equal, distance nonzero: |d|^(p-1) is infinite there for p < 1
    what = "a zero coordinate difference when p < 1"
    yield Sample((x1, x2, 0.5, None), desc="zero coordinate p=0.5", xfails=tangent_kink_at(what) | gradient_kink_at(what))
    x1 = make_arg(2, 4)
    x2 = x1 + torch.tensor([1.0, -1.0, 0.5, 0.25], dtype=dtype, device=device)  # row 0: |diff| ties at 1
    tie = xfail("upstream's backward gives every coordinate tied for the max its full sign (no split); the "
                "JVP follows it so JVP and VJP agree, while finite differences see half", "gradcheck")
    yield Sample((x1, x2, math.inf, None), desc="tie p=inf",
                 xfails=tie | tangent_kink_at("a tie of the max") | gradient_kink_at("a tie of the max"))
    yield Sample((make_arg(4, 3).mT, make_arg(4, 5, noncontiguous=True).mT, 1.5, None), desc="transposed and noncontiguous")
    yield Sample((make_arg(2, 3, 4), make_arg(2, 5, 4), 3.0, 2), desc="batched p=3")
    yield Sample((make_arg(0, 4), make_arg(3, 4), 2.0, None), desc="empty rows")
    yield Sample((make_arg(3, 0), make_arg(2, 0), 1.0, None), desc="zero features")
    yield Sample((make_arg(1, 1), make_arg(1, 1), 2.0, None), desc="1x1")


@samples_for("aten::_euclidean_dist")
def euclidean_dist_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)

    yield Sample((make_arg(3, 4), make_arg(5, 4)), desc="2d")
    yield Sample((make_arg(2, 3, 4), make_arg(2, 2, 4)), desc="batched")
    yield Sample((make_arg(4, 3).mT, make_arg(5, 4, noncontiguous=True)), desc="transposed and noncontiguous")
    yield Sample((make_arg(0, 4), make_arg(2, 4)), desc="empty rows")
    yield Sample((make_arg(1, 1), make_arg(1, 1)), desc="1x1")


def _pdist_errors(device):
    yield ErrorSample((torch.ones(4, 3, dtype=torch.float64, device=device).mT, 2.0), desc="non-contiguous")
    yield ErrorSample((torch.ones(3, dtype=torch.float64, device=device), 2.0), desc="1-d input")


@samples_for("aten::_pdist_forward", errors=_pdist_errors)
def pdist_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)

    for p in P_VALUES:
        yield Sample((make_arg(4, 3), p), desc=f"p={p}")
    for p in (0.5, 1.0, 2.0, math.inf):
        x = make_arg(4, 3)
        x[2] = x[0]
        yield Sample((x, p), desc=f"zero distance p={p}", xfails=ZERO_DISTANCE)
    yield Sample((make_arg(1, 3), 2.0), desc="one row (no pairs)")
    # no 0-row sample: upstream's _pdist_backward crashes (segfault) on 0 rows, so the
    # reverse-mode checks cannot run there; _pdist_forward rejects non-contiguous input.
    yield Sample((make_arg(3, 0), 3.0), desc="zero features")
