"""Samples for packing padded sequences (nn.utils.rnn.pack_padded_sequence)."""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for, xfail


def _lengths(*values):
    # _pack_padded_sequence takes a CPU int64 tensor, sorted in decreasing order
    return torch.tensor(values, dtype=torch.long)


@samples_for("aten::_pack_padded_sequence", errors=lambda device: _pack_errors(device), xfails=xfail(
    "under torch.func.jvp PyTorch's _pack_padded_sequence_backward reads a data pointer that "
    "functorch's wrapped tensors lack ('Cannot access data pointer of Tensor that doesn't have "
    "storage'); forward_ad over autograd.grad passes", "fwd_over_rev_func"))
def pack_padded_sequence_samples(dtype, device):
    # (T, B, *) with batch_first=False, (B, T, *) with batch_first=True
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for batch_first in (False, True):
        def padded(T, B, *feature, **kw):
            shape = (B, T, *feature) if batch_first else (T, B, *feature)
            return make_arg(*shape, **kw)

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


def _lstm_layer_args(dtype, device, reverse, has_biases, batch_first=False):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    T, B, I, H = 3, 2, 4, 5  # the kernel takes time-major input whatever batch_first says
    weights = [make_arg(4 * H, I), make_arg(4 * H, H)]
    biases = [make_arg(4 * H), make_arg(4 * H)] if has_biases \
        else [w.clone() for w in weights]  # nn.LSTM passes the weights again; the kernel ignores them
    state = [make_arg(B, H), make_arg(B, H)]
    return (make_arg(T, B, I), *weights, *biases, *state,
            reverse, [], 2, H, 1, has_biases, False, batch_first, False)


def _without_workspace(op, *args):
    # the fourth output is the kernel's scratch memory (uninitialised bytes in eval mode,
    # different on every call): not a value to differentiate or compare
    return op(*args)[:3]


# float32 only (mkldnn refuses float64): checked in float32 by tests/test_models_rnn.py
@samples_for("aten::mkldnn_rnn_layer", dtypes=(torch.float32,), cpu_runnable=False)
def mkldnn_rnn_layer_samples(dtype, device):
    # differentiable inputs in groups of at most four (the partial check walks every subset)
    for reverse in (False, True):
        direction = "reverse direction" if reverse else "forward in time"
        yield Sample(_lstm_layer_args(dtype, device, reverse, True), desc=f"{direction}, tangents on input and weights",
                     diff=(0, 1, 2), wrapper=_without_workspace)
        yield Sample(_lstm_layer_args(dtype, device, reverse, True), desc=f"{direction}, tangents on biases and state",
                     diff=(3, 4, 5, 6), wrapper=_without_workspace)
    yield Sample(_lstm_layer_args(dtype, device, False, False, batch_first=True), desc="no biases, batch_first flag",
                 diff=(0, 2, 5, 6), wrapper=_without_workspace)
