"""Samples for _grouped_mm (mixture-of-experts style grouped products).

Its CPU kernel takes float32/bfloat16/float16 only, with 16-byte-aligned strides (sizes
multiple of 4 in float32), so the samples are float32 and tests/test_float32_only_kernels.py
checks them against a loop of mm's instead of the float64 check matrix.
"""

import torch

from . import Sample, make, samples_for


def _offsets(*ends, device):
    return torch.tensor(ends, dtype=torch.int32, device=device)


@samples_for("aten::_grouped_mm", dtypes=(torch.float32,), cpu_runnable=False)
def grouped_mm_samples(dtype, device):
    yield Sample((make(10, 8, dtype=dtype, device=device), make(3, 8, 4, dtype=dtype, device=device),
                  _offsets(3, 7, 10, device=device)), desc="2-d x 3-d, groups of rows")
    yield Sample((make(10, 8, dtype=dtype, device=device), make(3, 4, 8, dtype=dtype, device=device).mT,
                  _offsets(3, 3, 10, device=device)), desc="2-d x 3-d, empty group, transposed mat2")
    yield Sample((make(3, 5, 8, dtype=dtype, device=device), make(3, 8, 4, dtype=dtype, device=device)),
                 desc="3-d x 3-d, batched")
    yield Sample((make(5, 12, dtype=dtype, device=device), make(12, 4, dtype=dtype, device=device),
                  _offsets(4, 8, 12, device=device)), desc="2-d x 2-d, groups along K")
    yield Sample((make(3, 5, 8, dtype=dtype, device=device), make(8, 12, dtype=dtype, device=device),
                  _offsets(4, 8, 12, device=device)), desc="3-d x 2-d, groups of columns")
