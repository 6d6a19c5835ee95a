"""Samples for _grouped_mm (mixture-of-experts style grouped products).

Its CPU kernel takes float32/bfloat16/float16 only, with 16-byte-aligned strides (sizes
multiple of 4 in float32), so the samples are float32 and tests/test_float32_only_kernels.py
checks them against a loop of mm's instead of the float64 check matrix.
"""

from functools import partial

import torch
from torch.testing import make_tensor

from . import Sample, samples_for


def _offsets(*ends, device):
    return torch.tensor(ends, dtype=torch.int32, device=device)


@samples_for("aten::_grouped_mm", dtypes=(torch.float32,), cpu_runnable=False)
def grouped_mm_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(10, 8), make_arg(3, 8, 4),
                  _offsets(3, 7, 10, device=device)), desc="2-d x 3-d, groups of rows")
    yield Sample((make_arg(10, 8), make_arg(3, 4, 8).mT,
                  _offsets(3, 3, 10, device=device)), desc="2-d x 3-d, empty group, transposed mat2")
    yield Sample((make_arg(3, 5, 8), make_arg(3, 8, 4)),
                 desc="3-d x 3-d, batched")
    yield Sample((make_arg(5, 12), make_arg(12, 4),
                  _offsets(4, 8, 12, device=device)), desc="2-d x 2-d, groups along K")
    yield Sample((make_arg(3, 5, 8), make_arg(8, 12),
                  _offsets(4, 8, 12, device=device)), desc="3-d x 2-d, groups of columns")
