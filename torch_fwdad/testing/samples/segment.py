"""Samples for segment_reduce."""

from functools import partial

import torch
from torch.testing import make_tensor

from . import NOT_IN_DERIVATIVES_TABLE, ErrorSample, Sample, no_reverse_mode, samples_for, third_order

REDUCTIONS = ("sum", "mean", "max", "min", "prod")


def _as_offsets(lengths):
    zeros = lengths.new_zeros(*lengths.shape[:-1], 1)
    return torch.cat([zeros, lengths], -1).cumsum(-1)


def with_zeros(data):
    # prod's tangent at zeros, for lengths (2, 0, 2, 4): one zero in the third segment
    # (the product of the others), two in the last (nothing), whose max and min stay
    # unique so that max/min see no tie
    data = data.clone()
    data[3] = data[5] = data[6] = 0
    data[4], data[7] = 10, -10
    return data


def with_ties(data):
    # max/min ties share the tangent evenly, as _segment_reduce_backward shares the
    # gradient. Finite differences cannot judge a tie's second order (any perturbation
    # breaks it), so tie samples are checked by tests/test_ctc_segment.py, not the matrix.
    data = data.clone()
    flat = data.view(-1)
    flat[1] = flat[2] = flat.abs().max() + 1
    flat[-1] = flat[-2] = -flat.abs().max() - 1
    return data


def _segment_cases(dtype, device):
    """(data, lengths, axis, unsafe, initial, desc)"""
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    lengths = lambda *v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
    # no empty segment without `initial`: its mean is NaN
    yield make_arg(5), lengths(1, 2, 2), 0, False, None, "1-d"
    yield with_zeros(make_arg(8)), lengths(2, 0, 2, 4), 0, False, 2, "zeros, initial"
    yield make_arg(4, 3, noncontiguous=True), lengths(1, 3), 0, False, None, "rows, non-contiguous"
    yield make_arg(6, 2, 2), lengths(1, 2, 0, 2), 0, True, 1, "unsafe: lengths short of the axis"
    yield make_arg(3, 4), lengths([2, 2], [0, 4], [3, 1]), 1, False, 1, "axis=1, per-row lengths"


@samples_for("aten::segment_reduce", errors=lambda device: _segment_errors(device))
def segment_reduce_samples(dtype, device):
    for data, lengths, axis, unsafe, initial, desc in _segment_cases(dtype, device):
        for reduce in REDUCTIONS:
            kwargs = dict(axis=axis, unsafe=unsafe, initial=initial)
            yield Sample((data, reduce), dict(kwargs, lengths=lengths), desc=f"{reduce} {desc}")
        yield Sample((data, "max"), dict(kwargs, offsets=_as_offsets(lengths)), desc=f"max offsets {desc}")
        yield Sample((data, "prod"), dict(kwargs, offsets=_as_offsets(lengths)), desc=f"prod offsets {desc}")


def _segment_errors(device):
    data = torch.randn(5, dtype=torch.float64, device=device)
    yield ErrorSample((data, "sum"), dict(lengths=torch.tensor([2, 2], device=device)), desc="lengths do not cover data")
    yield ErrorSample((data, "median"), dict(lengths=torch.tensor([5], device=device)), desc="unknown reduction")
    yield ErrorSample((data, "sum"), dict(lengths=torch.tensor([6, -1], device=device)), desc="negative length")


def _with_output_of_data(op, grad, data, reduce, **kwargs):
    # output recomputed from data, as in forward-over-reverse: at a zero of a prod segment
    # (or a max/min hit) the kernel is continuous only when output moves with data
    forward = {k: v for k, v in kwargs.items() if k != "unsafe_forward"}
    output = torch.segment_reduce(data, reduce, unsafe=kwargs.get("unsafe_forward", False), **forward)
    return op(grad, output, data, reduce, **forward)


def _backward_kwargs(kwargs, offsets):
    lengths = kwargs["lengths"]
    bounds = dict(offsets=_as_offsets(lengths)) if offsets else dict(lengths=lengths)
    return dict(bounds, axis=kwargs["axis"], initial=kwargs["initial"])


@samples_for("aten::_segment_reduce_backward", xfails=(
    no_reverse_mode("aten::_segment_reduce_backward") | third_order("aten::_segment_reduce_backward", NOT_IN_DERIVATIVES_TABLE)))
def segment_reduce_backward_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for data, lengths, axis, unsafe, initial, desc in _segment_cases(dtype, device):
        kwargs = dict(lengths=lengths, axis=axis, initial=initial)
        for reduce in REDUCTIONS:
            output = torch.segment_reduce(data, reduce, unsafe=unsafe, **kwargs)
            grad = make_arg(*output.shape)
            offsets = reduce in ("max", "prod")  # both bounds once each: max and prod take offsets
            bounds = _backward_kwargs(kwargs, offsets)
            if not (reduce == "prod" and desc.startswith("zeros")):
                # independent inputs; max/min hits are a step in output and data: grad only
                diff = (0,) if reduce in ("max", "min") else None
                yield Sample((grad, output, data, reduce), bounds, desc=f"{reduce} {desc}", diff=diff)
            yield Sample((grad, data, reduce), dict(bounds, unsafe_forward=unsafe), desc=f"{reduce} {desc} output of data",
                         wrapper=_with_output_of_data)
