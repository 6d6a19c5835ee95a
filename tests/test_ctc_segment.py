"""CTC and segment_reduce beyond the per-entry matrix: conventions, end to end, OpInfo."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.testing._internal.common_methods_invocations import op_db

from torch_fwdad.testing.samples.segment import with_ties

OPINFOS = {(op.name, op.variant_test_name): op for op in op_db}


def _jvp(fn, x, t):
    # forward_ad rather than torch.func: under functorch, ctc_loss with int lengths and
    # reduction='mean' fails in its composite (it builds a tensor from the list), with
    # or without torch_fwdad (OpInfo leaves that combination out for the same reason)
    with fwAD.dual_level():
        return fwAD.unpack_dual(fn(fwAD.make_dual(x, t))).tangent


def _reverse_jvp(fn, x, t):
    """J t from reverse mode: one VJP per output element (one-hot cotangents)."""
    return torch.autograd.functional.jacobian(fn, x).reshape(fn(x).numel(), x.numel()) @ t.reshape(-1)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_segment_reduce_ties_share_the_tangent_evenly(reduce):
    data = with_ties(torch.randn(7, dtype=torch.float64))  # [_, m, m, _, _, -m, -m]
    lengths = torch.tensor([3, 0, 2, 2])
    tangent = torch.randn(7, dtype=torch.float64)
    got = _jvp(lambda d: torch.segment_reduce(d, reduce, lengths=lengths), data, tangent)
    tied = (tangent[1] + tangent[2]) / 2 if reduce == "max" else (tangent[5] + tangent[6]) / 2
    assert torch.allclose(got[0 if reduce == "max" else 3], tied)
    # _segment_reduce_backward shares a positive gradient the same way (it leaves a
    # negative one unshared at ties, so it is not linear there: one-hot rows only)
    torch.testing.assert_close(got, _reverse_jvp(lambda d: torch.segment_reduce(d, reduce, lengths=lengths), data, tangent))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("lengths_type", [list, torch.tensor])
def test_functional_ctc_loss_matches_reverse_mode(reduction, lengths_type):
    logits = torch.randn(5, 3, 4, dtype=torch.float64)
    targets = torch.tensor([[1, 2], [3, 3], [1, 1]])
    # the last sequence is infeasible (1 1 needs 3 frames): zero_infinity zeroes it
    input_lengths, target_lengths = lengths_type([5, 4, 2]), lengths_type([2, 2, 2])

    def loss(x):
        return F.ctc_loss(x.log_softmax(-1), targets, input_lengths, target_lengths,
                          reduction=reduction, zero_infinity=True)

    tangent = torch.randn_like(logits)
    torch.testing.assert_close(_jvp(loss, logits, tangent).reshape(-1), _reverse_jvp(loss, logits, tangent))


def _opinfo_forward_gradcheck(op, sample):
    def fn(x):
        return op.gradcheck_wrapper(op.get_op(), x, *sample.args, **sample.kwargs)

    x = sample.input.detach().requires_grad_()
    assert torch.autograd.gradcheck(fn, (x,), check_forward_ad=True, check_backward_ad=False,
                                    check_batched_forward_grad=True, check_undefined_grad=False, fast_mode=True)


@pytest.mark.parametrize("variant", ["lengths", "offsets"])
def test_segment_reduce_opinfo_samples(variant):
    op = OPINFOS[("_segment_reduce", variant)]
    for sample in op.sample_inputs("cpu", torch.float64, requires_grad=True):
        _opinfo_forward_gradcheck(op, sample)


def test_ctc_loss_opinfo_samples():
    op = OPINFOS[("nn.functional.ctc_loss", "")]
    samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=True))
    for sample in samples[::4]:  # 16 sequences of 50 frames each: every reduction, both length types
        _opinfo_forward_gradcheck(op, sample)
