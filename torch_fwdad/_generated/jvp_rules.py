# @generated from derivatives.yaml by `python -m codegen`. Do not edit:
# change derivatives.yaml or torch_fwdad/formulas, then rerun `python -m codegen`.
"""Forward rules for aten overloads, one function per derivatives.yaml entry."""

import torch  # noqa: F401  (formulas may name torch)

from torch_fwdad.engine import BuiltinEntry
from torch_fwdad.formulas import (  # noqa: F401
    add_tangents,
    cholesky_jvp,
    ctc_loss_jvp,
    segment_reduce_jvp,
)


def jvp_cholesky(primals, tangents, outputs):
    # derivatives.yaml:75: cholesky(Tensor self, bool upper=False) -> Tensor
    self_p, upper = primals
    self_t, _ = tangents
    result = outputs
    result_tangent = cholesky_jvp(self_t, result, upper)
    return result_tangent


def jvp__ctc_loss(primals, tangents, outputs):
    # derivatives.yaml:96: _ctc_loss(Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)
    log_probs_p, targets_p, input_lengths, target_lengths, blank, zero_infinity = primals
    log_probs_t, targets_t, _, _, _, _ = tangents
    result0, result1 = outputs
    result0_tangent = None
    if log_probs_t is not None:
        result0_tangent = add_tangents(result0_tangent, ctc_loss_jvp(log_probs_t, log_probs_p, targets_p, input_lengths, target_lengths, result0, result1, blank, zero_infinity))
    return (result0_tangent, None)


def jvp__ctc_loss_Tensor(primals, tangents, outputs):
    # derivatives.yaml:100: _ctc_loss.Tensor(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)
    log_probs_p, targets_p, input_lengths_p, target_lengths_p, blank, zero_infinity = primals
    log_probs_t, targets_t, input_lengths_t, target_lengths_t, _, _ = tangents
    result0, result1 = outputs
    result0_tangent = None
    if log_probs_t is not None:
        result0_tangent = add_tangents(result0_tangent, ctc_loss_jvp(log_probs_t, log_probs_p, targets_p, input_lengths_p, target_lengths_p, result0, result1, blank, zero_infinity))
    return (result0_tangent, None)


def jvp_segment_reduce(primals, tangents, outputs):
    # derivatives.yaml:104: segment_reduce(Tensor data, str reduce, *, Tensor? lengths=None, Tensor? indices=None, Tensor? offsets=None, int axis=0, bool unsafe=False, Scalar? initial=None) -> Tensor
    data_p, reduce, lengths_p, indices_p, offsets_p, axis, unsafe, initial = primals
    data_t, _, lengths_t, indices_t, offsets_t, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if data_t is not None:
        result_tangent = add_tangents(result_tangent, segment_reduce_jvp(data_t, data_p, result, reduce, lengths_p, offsets_p, axis, initial))
    return result_tangent


ENTRIES = (
    BuiltinEntry('aten::cholesky', 'cholesky(Tensor self, bool upper=False) -> Tensor', jvp_cholesky, 'derivatives.yaml:75'),
    BuiltinEntry('aten::_ctc_loss', '_ctc_loss(Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)', jvp__ctc_loss, 'derivatives.yaml:96'),
    BuiltinEntry('aten::_ctc_loss.Tensor', '_ctc_loss.Tensor(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)', jvp__ctc_loss_Tensor, 'derivatives.yaml:100'),
    BuiltinEntry('aten::segment_reduce', 'segment_reduce(Tensor data, str reduce, *, Tensor? lengths=None, Tensor? indices=None, Tensor? offsets=None, int axis=0, bool unsafe=False, Scalar? initial=None) -> Tensor', jvp_segment_reduce, 'derivatives.yaml:104'),
)
