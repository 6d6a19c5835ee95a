"""Samples for the normalization entries: native_layer_norm and the batch norm overloads.

These entries replace upstream's formula only under an outer derivative, so the checks
that differentiate the tangent (forward-over-forward, forward-over-reverse) run them and
the first-order checks run upstream's; tests/test_reverse_over_forward.py checks reverse
mode through the tangent. Running statistics are buffers, not differentiated (`diff`), and
fresh for each sample; in training the output does not read them.
"""

from functools import partial

import torch
from torch.testing import make_tensor

from . import ErrorSample, Sample, samples_for, xfail

EPS = 1e-5
MOMENTUM = 0.1
# Plain PyTorch refuses this too (functorch asks for replace_all_batch_norm_modules_).
VMAP_RUNNING_STATS = xfail(
    "vmap cannot update unbatched running statistics in place from a batched input (plain PyTorch "
    "raises the same 'inplace arithmetic' error)", "vmap_jvp")


def _layer_norm_errors(device):
    x = torch.ones(3, 4, dtype=torch.float64, device=device)
    yield ErrorSample((x, [5], None, None, EPS), desc="normalized_shape does not match the input")
    yield ErrorSample((x, [4], torch.ones(3, dtype=torch.float64, device=device), None, EPS), desc="weight of the wrong shape")


@samples_for("aten::native_layer_norm", errors=_layer_norm_errors)
def layer_norm_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield Sample((make_arg(3, 4, 5), [5], make_arg(5), make_arg(5), EPS), desc="affine")
    yield Sample((make_arg(2, 3, 4), [3, 4], make_arg(3, 4), make_arg(3, 4), EPS), desc="two normalized dims")
    yield Sample((make_arg(3, 5), [5], None, None, EPS), desc="no affine")
    yield Sample((make_arg(3, 5), [5], make_arg(5), None, 0.5), desc="weight only, large eps")
    yield Sample((make_arg(5, 3).mT, [5], make_arg(5), make_arg(5), EPS), desc="non-contiguous")
    yield Sample((make_arg(0, 4), [4], make_arg(4), make_arg(4), EPS), desc="empty batch")


def _batch_norm_errors(device):
    # (native_batch_norm does not check the sizes of weight or running stats: it reads past them)
    x = torch.ones(3, dtype=torch.float64, device=device)
    yield ErrorSample((x, None, None, None, None, True, MOMENTUM, EPS), desc="1-d input, no channel dim")


def _stats(channels, dtype, device):
    return torch.zeros(channels, dtype=dtype, device=device), torch.ones(channels, dtype=dtype, device=device)


def _batch_norm_inputs(make_arg):
    """(desc, input, weight, bias): 2-d to 4-d inputs, channel dim 1, with and without affine."""
    yield "2-d", make_arg(4, 3), make_arg(3), make_arg(3)
    yield "3-d", make_arg(3, 2, 4), make_arg(2), make_arg(2)
    yield "4-d", make_arg(2, 3, 2, 2), make_arg(3), make_arg(3)
    yield "no affine", make_arg(3, 2, 4), None, None
    yield "non-contiguous", make_arg(4, 2, 3).transpose(0, 2), make_arg(2), make_arg(2)


@samples_for("aten::native_batch_norm", errors=_batch_norm_errors)
def native_batch_norm_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for desc, x, weight, bias in _batch_norm_inputs(make_arg):
        yield Sample((x, weight, bias, None, None, True, MOMENTUM, EPS), desc=f"{desc} training", diff=(0, 1, 2))
    x = make_arg(3, 2, 4)
    yield Sample((x, make_arg(2), make_arg(2), *_stats(2, dtype, device), True, MOMENTUM, EPS),
                 desc="training, running stats", diff=(0, 1, 2), xfails=VMAP_RUNNING_STATS)
    running_var = make_tensor(2, dtype=dtype, device=device, low=0.5, high=2)
    yield Sample((x, make_arg(2), make_arg(2), make_arg(2), running_var, False, MOMENTUM, EPS), desc="eval (upstream)",
                 diff=(0, 1, 2))


# The overloads below share native_batch_norm's formula (same_as): two inputs each.
def _two_inputs(make_arg):
    inputs = list(_batch_norm_inputs(make_arg))
    return inputs[1], inputs[3]  # 3-d with affine, 3-d without


@samples_for("aten::_native_batch_norm_legit")
def native_batch_norm_legit_samples(dtype, device):
    for desc, x, weight, bias in _two_inputs(partial(make_tensor, dtype=dtype, device=device)):
        yield Sample((x, weight, bias, *_stats(x.shape[1], dtype, device), True, MOMENTUM, EPS), desc=f"{desc} training",
                     diff=(0, 1, 2), xfails=VMAP_RUNNING_STATS)


@samples_for("aten::_native_batch_norm_legit.no_stats")
def native_batch_norm_legit_no_stats_samples(dtype, device):
    for desc, x, weight, bias in _two_inputs(partial(make_tensor, dtype=dtype, device=device)):
        yield Sample((x, weight, bias, True, MOMENTUM, EPS), desc=f"{desc} training")


@samples_for("aten::_batch_norm_with_update")
def batch_norm_with_update_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for desc, x, weight, bias in list(_batch_norm_inputs(make_arg))[1:3]:  # its backward requires a weight
        yield Sample((x, weight, bias, *_stats(x.shape[1], dtype, device), MOMENTUM, EPS), desc=desc, diff=(0, 1, 2),
                     xfails=VMAP_RUNNING_STATS)
