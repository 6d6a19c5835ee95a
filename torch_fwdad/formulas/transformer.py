"""Inference fast paths of nn.MultiheadAttention and nn.TransformerEncoderLayer.

In eval mode with nothing requiring grad, these modules call one fused kernel each
(_native_multi_head_attention, _transformer_encoder_layer_fwd). The kernels run the
modules' own math: projections, softmax attention (_masked_softmax with the boolean
mask the kernel derives from a float one), layer norms, a ReLU or exact-GELU feed
forward (aten/src/ATen/native/transformers/{attention,transformer}.cpp). The tangents
below are that math differentiated by hand. They need the primal's intermediates (q, k,
v, the attention probabilities, the layer norms' statistics, the activation), which the
kernels compute but do not return:

- on plain CPU tensors, with nothing outside able to differentiate the rule, they are kept
  as the kernel computes them (fused_recording.py, a dispatch mode around the kernel's
  call), so the primal is computed once and the tangent costs about one primal's worth
  of matrix products;
- otherwise (nested input, an outer derivative, another dispatch mode or device) they
  are recomputed with differentiable ops, so the rules compose with outer derivatives.

Either way the same functions take them to the tangent (`_layer_tangent`,
`_attention_block_tangent`). A tangent of None is a zero tangent and costs nothing.

nn.TransformerEncoder with src_key_padding_mask in eval mode takes a third path: it packs
the batch into a nested tensor (_nested_tensor_from_mask), runs each layer's kernel on it
and pads the result with zeros (to_padded_tensor). PyTorch cannot make a nested tensor
dual, so the engine keeps a nested tensor's tangent beside it, padded and zero past each
sequence's end (engine/nested.py). The layer's tangent is then the padded one with the
padding as key padding mask: each sequence attends to its own tokens only, exactly as in
the nested kernel, and the padded rows are zero, as to_padded_tensor writes them.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..engine.kernel import run_upstream_with
from ._common import outer_transforms_around, requires_grad_at_any_level, sum_tangents
from .fused_recording import Recording, can_record
from .normalization import standardize, standardized_tangent

__all__ = ["native_multi_head_attention_jvp", "nested_from_mask_jvp", "nested_to_padded_jvp",
           "transformer_encoder_layer_jvp"]


class _Attention(NamedTuple):
    """One attention's primal intermediates, (B, H, T, E): q (scaled by 1/√E, as the
    kernel scales it), k, v, the probabilities P (B, H, T, S) and the context P v."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    probs: torch.Tensor
    context: torch.Tensor


class _Norm(NamedTuple):
    """One layer norm over the last dim: x̂ = (x - mean) · rstd, rstd, and its output."""

    normed: torch.Tensor
    rstd: torch.Tensor
    output: torch.Tensor


class _Layer(NamedTuple):
    """An encoder layer's primal intermediates; `norms` in call order (norm₁, norm₂)."""

    attention: _Attention
    norms: tuple[_Norm, _Norm]
    hidden: torch.Tensor  # the feed forward's activation, after the activation
    pre_activation: torch.Tensor | None  # before it: GELU's slope needs it, ReLU's does not


class _Params(NamedTuple):
    """An encoder layer's parameters as (primal, tangent) pairs; a tangent None is zero."""

    qkv_weight: tuple
    qkv_bias: tuple
    proj_weight: tuple
    proj_bias: tuple
    norm_weight_1: tuple
    norm_bias_1: tuple
    norm_weight_2: tuple
    norm_bias_2: tuple
    ffn_weight_1: tuple
    ffn_bias_1: tuple
    ffn_weight_2: tuple
    ffn_bias_2: tuple


# ------------------------------------------------------------------ tangents from intermediates

def _linear_tangent(x, x_t, weight, weight_t, bias_t):
    """Tangent of F.linear(x, weight, bias) (x is read for weight_t and the output's shape)."""
    total = sum_tangents(None if x_t is None else F.linear(x_t, weight),
                         None if weight_t is None else F.linear(x, weight_t), bias_t)
    shape = (*x.shape[:-1], weight.shape[0])
    return total if total is None or total.shape == shape else total.expand(shape)


def _layer_norm_tangent(norm: _Norm, x_t, weight, weight_t, bias_t, in_place=False):
    """y' = w ⊙ x̂' + w' ⊙ x̂ + b', with x̂' = (x' - mean x' - x̂ · mean(x̂ ⊙ x')) · rstd (mean x̂ = 0).
    `in_place`: the fresh intermediates may be written over (nothing outside saved them)."""
    normed_t = None
    if x_t is not None:
        normed_t = standardized_tangent(norm.normed, norm.rstd, x_t, (-1,), in_place)
        normed_t = normed_t.mul_(weight) if in_place else normed_t * weight
    total = sum_tangents(normed_t, None if weight_t is None else norm.normed * weight_t, bias_t)
    return total if total is None or total.shape == norm.output.shape else total.expand_as(norm.output)


def _activation_tangent(layer: _Layer, x_t, use_gelu: bool):
    if x_t is None:
        return None
    if use_gelu:  # exact (erf) GELU: x' (Φ(x) + x φ(x)), by gelu's own backward op (one pass)
        return torch.ops.aten.gelu_backward(x_t, layer.pre_activation)
    # ReLU: x' where the output is positive (relu(x) > 0 iff x > 0), 0 elsewhere: relu's own backward op
    return torch.ops.aten.threshold_backward(x_t, layer.hidden, 0)


def _attention_tangent(attention: _Attention, q_t, k_t, v_t, in_place: bool, need_probs_t: bool = False):
    """(context tangent (B, H, T, E), the probabilities' tangent when asked for, else None).

    ṡ = q̇ kᵀ + q k̇ᵀ; Ṗ = P ⊙ ṡ - P · rowsum(P ⊙ ṡ) (masked entries have P = 0 and stay 0);
    Ṗ v = (P ⊙ ṡ) v - rowsum(P ⊙ ṡ) · context, without forming Ṗ. `in_place`: ṡ may be
    written over (nothing outside can have saved it).
    """
    q, k, v, probs, context = attention
    if q_t is not None and k_t is not None:  # one product: [q̇, q] [k, k̇]ᵀ
        scores_t = torch.cat([q_t, q], -1) @ torch.cat([k, k_t], -1).mT
    else:
        scores_t = None if q_t is None else q_t @ k.mT
        scores_t = scores_t if k_t is None else q @ k_t.mT
    context_t = probs_t = None
    if scores_t is not None:
        weighted = scores_t.mul_(probs) if in_place else probs * scores_t
        row_sums = weighted.sum(-1, keepdim=True)
        context_t = torch.addcmul(weighted @ v, row_sums, context, value=-1)
        if need_probs_t:
            probs_t = torch.addcmul(weighted, probs, row_sums, value=-1)
    if v_t is None:
        return context_t, probs_t
    return probs @ v_t if context_t is None else context_t.add_(probs @ v_t), probs_t


def _split_heads(t, num_head):
    """(B, T, D) -> (B, H, T, D / H). reshape, not unflatten (nor flatten in _merge_heads):
    gradcheck's batched forward grad runs rules under the legacy vmap, which has no
    batching rule for either."""
    return t.reshape(*t.shape[:-1], num_head, -1).transpose(1, 2)


def _merge_heads(t):
    """(B, H, T, E) -> (B, T, H·E)."""
    return t.transpose(1, 2).reshape(*t.shape[:1], t.shape[2], -1)


def _projection_tangents(inputs, inputs_t, num_head, scale, weight, weight_t, bias_t):
    """Tangents of q (scaled), k and v, (B, H, T, E), from the packed in-projection of
    inputs = (query, key, value); self-attention takes one product for all three."""
    query, key, value = inputs
    if query is key is value and inputs_t[0] is inputs_t[1] is inputs_t[2]:
        packed_t = _linear_tangent(query, inputs_t[0], weight, weight_t, bias_t)
        per_input = (None,) * 3 if packed_t is None else packed_t.chunk(3, -1)
    else:
        thirds = lambda t: (None,) * 3 if t is None else t.chunk(3, 0)  # noqa: E731
        per_input = tuple(_linear_tangent(x, x_t, w, w_t, b_t) for x, x_t, w, w_t, b_t in
                          zip(inputs, inputs_t, weight.chunk(3, 0), thirds(weight_t), thirds(bias_t)))
    q_t, k_t, v_t = (None if t is None else _split_heads(t, num_head) for t in per_input)
    return None if q_t is None else q_t * scale, k_t, v_t


def _attention_block_tangent(attention: _Attention, inputs, inputs_t, num_head, qkv_weight, qkv_weight_t,
                             qkv_bias_t, proj_weight, proj_weight_t, proj_bias_t, in_place, need_probs_t=False):
    """(output tangent (B, T, D), probabilities' tangent) of projections, attention and output projection."""
    scale = 1 / math.sqrt(attention.q.shape[-1])
    q_t, k_t, v_t = _projection_tangents(inputs, inputs_t, num_head, scale, qkv_weight, qkv_weight_t, qkv_bias_t)
    context_t, probs_t = _attention_tangent(attention, q_t, k_t, v_t, in_place, need_probs_t)
    merged_t = None if context_t is None else _merge_heads(context_t)
    # the merged primal context is read for proj_weight_t only (otherwise for its shape)
    merged = _merge_heads(attention.context) if proj_weight_t is not None or merged_t is None else merged_t
    return _linear_tangent(merged, merged_t, proj_weight, proj_weight_t, proj_bias_t), probs_t


def _layer_tangent(layer: _Layer, src, src_t, p: _Params, num_heads, use_gelu, norm_first, in_place):
    """Tangent of the post-norm or pre-norm (norm_first) block

    x = src + attention(norm₁(src)); out = x + ffn(norm₂(x))      (norm_first)
    x = norm₁(src + attention(src)); out = norm₂(x + ffn(x))      (otherwise)
    """
    norm1, norm2 = layer.norms
    norm1_t = lambda x_t: _layer_norm_tangent(norm1, x_t, *p.norm_weight_1, p.norm_bias_1[1], in_place)  # noqa: E731
    norm2_t = lambda x_t: _layer_norm_tangent(norm2, x_t, *p.norm_weight_2, p.norm_bias_2[1], in_place)  # noqa: E731

    def attention_t(x, x_t):
        return _attention_block_tangent(layer.attention, (x,) * 3, (x_t,) * 3, num_heads, *p.qkv_weight,
                                        p.qkv_bias[1], *p.proj_weight, p.proj_bias[1], in_place)[0]

    def feed_forward_t(x, x_t):
        hidden_t = _activation_tangent(layer, _linear_tangent(x, x_t, *p.ffn_weight_1, p.ffn_bias_1[1]), use_gelu)
        return _linear_tangent(layer.hidden, hidden_t, *p.ffn_weight_2, p.ffn_bias_2[1])

    if norm_first:
        x_t = sum_tangents(src_t, attention_t(norm1.output, norm1_t(src_t)))
        return sum_tangents(x_t, feed_forward_t(norm2.output, norm2_t(x_t)))
    x_t = norm1_t(sum_tangents(src_t, attention_t(src, src_t)))
    return norm2_t(sum_tangents(x_t, feed_forward_t(norm1.output, x_t)))


# ------------------------------------------------------------------ intermediates, kept or recomputed

def _recorded_attention(recording: Recording) -> _Attention | None:
    if not recording.complete(qkv=1, probs=1, contexts=1):
        return None
    (q, k, v), = recording.kept["qkv"]
    probs = recording.kept["probs"][0].view(*q.shape[:-1], k.shape[-2])
    return _Attention(q, k, v, probs, recording.kept["contexts"][0].view(q.shape))


def _recorded_layer(recording: Recording, use_gelu: bool) -> _Layer | None:
    if not recording.complete(layer_norms=2, hidden=1, gelu_inputs=int(use_gelu)):
        return None
    attention = _recorded_attention(recording)
    if attention is None:
        return None
    norms = tuple(_Norm((x - mean) * rstd, rstd, y) for x, y, mean, rstd in recording.kept["layer_norms"])
    tokens = norms[0].output.shape[:-1]  # the feed forward's products are (tokens, features)
    pre_activation = recording.kept["gelu_inputs"][0].view(*tokens, -1) if use_gelu else None
    return _Layer(attention, norms, recording.kept["hidden"][0].view(*tokens, -1), pre_activation)


def _recomputed_attention(query, key, value, num_head, qkv_weight, qkv_bias, mask, mask_type) -> _Attention:
    scale = 1 / math.sqrt(query.shape[-1] // num_head)
    if query is key is value:
        projected = F.linear(query, qkv_weight, qkv_bias).chunk(3, -1)
    else:
        projected = tuple(F.linear(x, w, b) for x, w, b in zip((query, key, value), qkv_weight.chunk(3, 0),
                                                               qkv_bias.chunk(3, 0)))
    q, k, v = (_split_heads(t, num_head) for t in projected)
    q = q * scale
    scores = q @ k.mT
    if mask is None:
        probs = torch.softmax(scores, -1)
    else:  # the kernel turns a float mask into a boolean one (nonzero = masked out)
        mask, mask_type = _mask_like_scores(mask.to(torch.bool), mask_type, scores)
        probs = torch._masked_softmax(scores, mask, scores.dim() - 1, mask_type)
    return _Attention(q, k, v, probs, probs @ v)


def _mask_like_scores(mask, mask_type, scores):
    """An L x S (type 0) or B x S (type 1) mask expanded to the scores' shape (type 2), which
    gives the same probabilities: PyTorch's _masked_softmax_backward accepts only that shape
    ('Mask shape should match grad shape'), and reverse mode through the tangent reaches it."""
    if mask_type == 0:
        return mask.expand(scores.shape), 2
    if mask_type == 1:
        return mask[:, None, None, :].expand(scores.shape), 2
    return mask, mask_type


def _recomputed_norm(x, weight, bias, eps) -> _Norm:
    """x̂ and rstd with differentiable ops: native_layer_norm returns mean and rstd, but gives
    them no tangent, which forward-over-forward needs."""
    return _Norm(*standardize(x, (-1,), eps), F.layer_norm(x, (x.shape[-1],), weight, bias, eps))


def _recomputed_layer(src, p: _Params, num_heads, use_gelu, norm_first, eps, mask, mask_type) -> _Layer:
    def attention(x):
        found = _recomputed_attention(x, x, x, num_heads, p.qkv_weight[0], p.qkv_bias[0], mask, mask_type)
        return found, F.linear(_merge_heads(found.context), p.proj_weight[0], p.proj_bias[0])

    def feed_forward(x):
        pre_activation = F.linear(x, p.ffn_weight_1[0], p.ffn_bias_1[0])
        return pre_activation, F.gelu(pre_activation) if use_gelu else F.relu(pre_activation)

    if norm_first:
        norm1 = _recomputed_norm(src, p.norm_weight_1[0], p.norm_bias_1[0], eps)
        found, out = attention(norm1.output)
        norm2 = _recomputed_norm(src + out, p.norm_weight_2[0], p.norm_bias_2[0], eps)
        pre_activation, hidden = feed_forward(norm2.output)
    else:
        found, out = attention(src)
        norm1 = _recomputed_norm(src + out, p.norm_weight_1[0], p.norm_bias_1[0], eps)
        pre_activation, hidden = feed_forward(norm1.output)
        ffn_out = F.linear(hidden, p.ffn_weight_2[0], p.ffn_bias_2[0])
        norm2 = _recomputed_norm(norm1.output + ffn_out, p.norm_weight_2[0], p.norm_bias_2[0], eps)
    return _Layer(found, (norm1, norm2), hidden, pre_activation if use_gelu else None)


# The fused kernels' intermediates are recorded as they run: the engine has
# `_run_recording` run the kernel, and the rule, called next on the same thread, takes
# what it kept.
_latest = threading.local()
_CPU = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
_JVP = torch._C._functorch.TransformType.Jvp


def _run_recording(call, op, args, kwargs, primals, tangents):
    _latest.recording = None
    tensors = [t for t in (*primals, *tangents) if isinstance(t, torch.Tensor)]
    if not can_record(*tensors) or _outer_derivative_possible(tensors):
        return call()
    interpreter = torch._C._functorch.peek_interpreter_stack()
    recording = Recording()
    if interpreter is None:
        with recording:
            output = call()
    elif interpreter.key() == _JVP:
        output = _run_below_jvp(interpreter.level(), recording, op, args, kwargs)
    else:
        return call()
    _latest.recording = (primals[0], recording)
    return output


def _run_below_jvp(level, recording, op, args, kwargs):
    """The kernel's call under torch.func.jvp, as functorch makes it, but with the recording
    seen: functorch runs the kernel on the values its wrappers hold, with the dispatch keys of
    when the op was called (which leave out a dispatch mode pushed since), and wraps the
    outputs again at its level."""
    unwrap = lambda a: torch._C._functorch._unwrap_for_grad(a, level) if isinstance(a, torch.Tensor) else a  # noqa: E731
    with torch._C._DisableFuncTorch(), torch._C._AutoDispatchBelowADInplaceOrView(), recording:
        output = op.redispatch(_CPU, *map(unwrap, args), **kwargs)
    wrap = lambda o: torch._C._functorch._wrap_for_grad(o, level) if isinstance(o, torch.Tensor) else o  # noqa: E731
    return tuple(map(wrap, output)) if isinstance(output, tuple) else wrap(output)


def _outer_derivative_possible(tensors) -> bool:
    """Reverse mode (grad enabled, an input requiring grad) or an outer torch.func transform
    could differentiate the rule (under torch.func.jvp, beneath its wrappers too): the kept
    intermediates, computed below autograd, would be constants to it."""
    return outer_transforms_around() or (torch.is_grad_enabled() and any(requires_grad_at_any_level(t) for t in tensors))


def _take_recording(first_primal) -> Recording | None:
    """The recording of this call's kernel (its first argument is `first_primal`), or None."""
    latest, _latest.recording = getattr(_latest, "recording", None), None
    return latest[1] if latest is not None and latest[0] is first_primal else None


def record_fused_kernels() -> None:
    """Have the engine run the fused kernels through `_run_recording`; called by torch_fwdad/__init__.py."""
    for op in ("aten::_transformer_encoder_layer_fwd", "aten::_native_multi_head_attention"):
        run_upstream_with(op, _run_recording)


# ------------------------------------------------------------------ the rules

def _refuse_nested(op, *tensors):
    if any(t is not None and t.is_nested for t in tensors):
        raise NotImplementedError(
            f"torch_fwdad: forward-mode AD through {op} on a nested tensor is not supported (only "
            f"_transformer_encoder_layer_fwd takes nested input, as nn.TransformerEncoder passes it)"
        )


def nested_from_mask_jvp(t_t, result):
    """Tangent of _nested_tensor_from_mask, padded: sequence i keeps its first len_i rows."""
    _refuse_outside_encoder()
    lengths = result._nested_tensor_size()[:, 0]
    longest = int(lengths.max()) if lengths.numel() else 0
    return t_t[:, :longest].masked_fill(_past_the_end(lengths, longest).to(t_t.device)[..., None], 0)


def nested_to_padded_jvp(self_t, result):
    """Tangent of to_padded_tensor: the kept padded tangent, widened with zeros to the output's shape."""
    widen = [size for have, want in zip(reversed(self_t.shape), reversed(result.shape)) for size in (0, want - have)]
    return F.pad(self_t, widen) if any(widen) else self_t


_ENCODER_FORWARD = torch.nn.TransformerEncoder.forward.__code__
_FRAMES_TO_CALLER = 8  # this rule, the generated rule, the engine's kernel, then the caller


def _refuse_outside_encoder():
    """A nested tensor's tangent is kept beside it (engine/nested.py) and read only by the ops
    of nn.TransformerEncoder's own forward (its layers' fused kernel, to_padded_tensor):
    called from anywhere else, other ops on the nested result would drop it silently."""
    frame = sys._getframe(1)
    for _ in range(_FRAMES_TO_CALLER):
        if frame is None:
            break
        if frame.f_code is _ENCODER_FORWARD:
            return
        frame = frame.f_back
    raise NotImplementedError(
        "torch_fwdad: forward-mode AD through torch._nested_tensor_from_mask is supported only along "
        "nn.TransformerEncoder's path (eval mode with src_key_padding_mask), where the layers' fused "
        "kernel and to_padded_tensor carry the tangent; elsewhere other ops on the nested result would "
        "drop it. Keep the batch padded and pass the mask to the attention (key_padding_mask / "
        "src_key_padding_mask) instead"
    )


def _past_the_end(lengths, longest):
    """(batch, longest) boolean: True at the padding after each sequence's length (on the
    CPU, where nested tensors keep their sizes)."""
    return torch.arange(longest, device=lengths.device) >= lengths[:, None]


def _padded_sequences(nested):
    """(padded primal, key padding mask) of a nested batch of (length_i, embed) sequences."""
    lengths = nested._nested_tensor_size()[:, 0]
    padded = torch.nn.utils.rnn.pad_sequence(nested.unbind(), batch_first=True)
    return padded, _past_the_end(lengths, padded.shape[1]).to(padded.device)


def native_multi_head_attention_jvp(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight,
                                    proj_bias, mask, need_weights, average_attn_weights, mask_type,
                                    query_t, key_t, value_t, qkv_weight_t, qkv_bias_t, proj_weight_t, proj_bias_t,
                                    out, weights):
    """Tangents of (output, averaged or per-head attention weights) of _native_multi_head_attention."""
    recording = _take_recording(query)
    _refuse_nested("_native_multi_head_attention", query, key, value)
    if out.numel() == 0:  # the kernel returns early on an empty batch
        return torch.zeros_like(out), None
    attention = None if recording is None else _recorded_attention(recording)
    if attention is None:
        attention = _recomputed_attention(query, key, value, num_head, qkv_weight, qkv_bias, mask, mask_type)
    wants_weights = need_weights and weights is not None
    out_t, probs_t = _attention_block_tangent(
        attention, (query, key, value), (query_t, key_t, value_t), num_head, qkv_weight, qkv_weight_t, qkv_bias_t,
        proj_weight, proj_weight_t, proj_bias_t, in_place=recording is not None, need_probs_t=wants_weights)
    if not wants_weights:
        return _zeros_if_none(out_t, out), None
    if average_attn_weights:
        probs_t = None if probs_t is None else probs_t.sum(1) / num_head
    return _zeros_if_none(out_t, out), _zeros_if_none(probs_t, weights)


def _zeros_if_none(tangent, primal):
    return torch.zeros_like(primal) if tangent is None else tangent


def transformer_encoder_layer_jvp(src, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu,
                                  norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2,
                                  ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, mask, mask_type,
                                  src_t, qkv_weight_t, qkv_bias_t, proj_weight_t, proj_bias_t,
                                  norm_weight_1_t, norm_bias_1_t, norm_weight_2_t, norm_bias_2_t,
                                  ffn_weight_1_t, ffn_bias_1_t, ffn_weight_2_t, ffn_bias_2_t, result):
    """Tangent of _transformer_encoder_layer_fwd (see _layer_tangent)."""
    recording = _take_recording(src)
    params = _Params((qkv_weight, qkv_weight_t), (qkv_bias, qkv_bias_t), (proj_weight, proj_weight_t),
                     (proj_bias, proj_bias_t), (norm_weight_1, norm_weight_1_t), (norm_bias_1, norm_bias_1_t),
                     (norm_weight_2, norm_weight_2_t), (norm_bias_2, norm_bias_2_t), (ffn_weight_1, ffn_weight_1_t),
                     (ffn_bias_1, ffn_bias_1_t), (ffn_weight_2, ffn_weight_2_t), (ffn_bias_2, ffn_bias_2_t))
    padding = None
    if src.is_nested:  # from nn.TransformerEncoder, without masks; src_t is already padded
        src, padding = _padded_sequences(src)
        mask, mask_type = padding, 1
    elif result.numel() == 0:
        return torch.zeros_like(result)
    layer = None if recording is None else _recorded_layer(recording, use_gelu)
    if layer is None:
        layer = _recomputed_layer(src, params, num_heads, use_gelu, norm_first, eps, mask, mask_type)
    result_t = _layer_tangent(layer, src, src_t, params, num_heads, use_gelu, norm_first,
                              in_place=recording is not None)
    if padding is not None:
        return torch.zeros_like(src) if result_t is None else result_t.masked_fill(padding[..., None], 0)
    return _zeros_if_none(result_t, result)
