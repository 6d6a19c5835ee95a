"""Samples for the in-place overloads of derivatives.yaml (`in_place_of:` entries).

The out-of-place samples, run in place on a copy of self (an input of the check matrix
may be a leaf that requires grad, which cannot be written in place), with their expected failures.
"""

from __future__ import annotations

import dataclasses

from . import samples_for
from .indexing import index_reduce_samples, scatter_reduce_samples
from .linalg import renorm_samples


def _on_a_copy(op, self, *args, **kwargs):
    return op(self.clone(), *args, **kwargs)


def _in_place(samples):
    for sample in samples:
        yield dataclasses.replace(sample, wrapper=_on_a_copy)


@samples_for("aten::index_reduce_")
def index_reduce_in_place_samples(dtype, device):
    yield from _in_place(index_reduce_samples(dtype, device))


@samples_for("aten::scatter_reduce_.two")
def scatter_reduce_in_place_samples(dtype, device):
    yield from _in_place(scatter_reduce_samples(dtype, device))


@samples_for("aten::renorm_")
def renorm_in_place_samples(dtype, device):
    # the corrected case and an upstream one (CI time: the other layouts run out of place)
    samples = list(renorm_samples(dtype, device))
    yield from _in_place(s for s in samples if s.desc in ("p 1, dim 0", "p 2 (upstream)"))
