"""Samples for packing padded sequences (nn.utils.rnn.pack_padded_sequence)."""

import torch

from . import ErrorSample, Sample, make, samples_for


def _lengths(*values):
    # _pack_padded_sequence takes a CPU int64 tensor, sorted in decreasing order
    return torch.tensor(values, dtype=torch.long)


@samples_for("aten::_pack_padded_sequence", errors=lambda device: _pack_errors(device))
def pack_padded_sequence_samples(dtype, device):
    # (T, B, *) with batch_first=False, (B, T, *) with batch_first=True
    for batch_first in (False, True):
        def padded(T, B, *feature, **kw):
            shape = (B, T, *feature) if batch_first else (T, B, *feature)
            return make(*shape, dtype=dtype, device=device, **kw)

        layout = "batch_first" if batch_first else "time_first"
        yield Sample((padded(4, 3, 2), _lengths(4, 4, 4), batch_first), desc=f"{layout}, equal lengths")
        yield Sample((padded(5, 3, 2), _lengths(5, 3, 1), batch_first), desc=f"{layout}, unequal lengths")
        yield Sample((padded(4, 2), _lengths(3, 2), batch_first), desc=f"{layout}, no features, shorter than T")
        yield Sample((padded(3, 4, 2, 2, noncontiguous=True), _lengths(3, 3, 2, 1), batch_first),
                     desc=f"{layout}, two feature dims, non-contiguous")


def _pack_errors(device):
    data = torch.randn(4, 3, 2, dtype=torch.float64, device=device)
    yield ErrorSample((data, _lengths(1, 3, 2), False), desc="lengths not sorted")
    yield ErrorSample((data, _lengths(4, 0, 2), False), desc="zero length")
