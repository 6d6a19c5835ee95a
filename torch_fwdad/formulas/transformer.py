"""Inference fast paths of nn.MultiheadAttention and nn.TransformerEncoderLayer.

In eval mode with nothing requiring grad, these modules call one fused kernel each
(_native_multi_head_attention, _transformer_encoder_layer_fwd). The kernels run the
modules' own math: projections, softmax attention (_masked_softmax with the boolean
mask the kernel derives from a float one), layer norms, a ReLU or exact-GELU feed
forward (aten/src/ATen/native/transformers/{attention,transformer}.cpp). The tangents
below are that math differentiated by hand, recomputing the intermediates the kernels
do not return, with differentiable ops only, so the rules compose with outer
derivatives. A tangent of None is a zero tangent and costs nothing; each helper
returns (primal, tangent).

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

import torch
import torch.nn.functional as F

from ._common import sum_tangents

__all__ = ["native_multi_head_attention_jvp", "nested_from_mask_jvp", "nested_to_padded_jvp",
           "transformer_encoder_layer_jvp"]


def _linear(x, x_t, weight, weight_t, bias, bias_t):
    y = F.linear(x, weight, bias)
    terms = (None if x_t is None else F.linear(x_t, weight),
             None if weight_t is None else F.linear(x, weight_t), bias_t)
    return y, _full(sum_tangents(*terms), y)


def _full(tangent, primal):
    """A tangent that may have come from a bias alone, broadcast to the primal's shape."""
    return tangent if tangent is None or tangent.shape == primal.shape else tangent.expand_as(primal)


def _layer_norm(x, x_t, weight, weight_t, bias, bias_t, eps):
    """layer_norm over the last dim; x̂' = (x' - mean x' - x̂ mean(x̂ x')) / σ.

    mean and σ are recomputed with differentiable ops: native_layer_norm returns them,
    but gives them no tangent, which forward-over-forward needs."""
    y = F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    if x_t is None and weight_t is None:
        return y, bias_t if bias_t is None else _full(bias_t, y)
    mean = x.mean(-1, keepdim=True)
    rstd = torch.rsqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
    normed = (x - mean) * rstd
    normed_t = None
    if x_t is not None:
        centred_t = x_t - x_t.mean(-1, keepdim=True)
        normed_t = (centred_t - normed * (normed * centred_t).mean(-1, keepdim=True)) * rstd
    terms = (None if normed_t is None else normed_t * weight,
             None if weight_t is None else normed * weight_t, bias_t)
    return y, _full(sum_tangents(*terms), y)


def _activation(x, x_t, use_gelu):
    if use_gelu:  # exact (erf) GELU: Φ(x) + x φ(x)
        y = F.gelu(x)
        slope = 0.5 * (1 + torch.erf(x * (1 / math.sqrt(2)))) + x * torch.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
    else:  # ReLU: slope 0 at 0, as relu's backward
        y = F.relu(x)
        slope = (x > 0).to(x.dtype)
    return y, None if x_t is None else slope * x_t


def _add(a, a_t, b, b_t):
    return a + b, sum_tangents(a_t, b_t)


def _heads(y, y_t, num_head, scale=1.0):
    """(B, T, D) -> (B, H, T, D / H), scaled (the kernel folds 1/√d into q)."""
    split = lambda t: t.reshape(*t.shape[:-1], num_head, -1).transpose(1, 2) * scale  # noqa: E731
    return split(y), None if y_t is None else split(y_t)


def _projections(query, query_t, key, key_t, value, value_t, qkv_weight, qkv_weight_t, qkv_bias, qkv_bias_t):
    """(q, q_t), (k, k_t), (v, v_t) in (B, T, D); self-attention takes one product for all three."""
    if query is key and key is value and query_t is key_t and key_t is value_t:
        y, y_t = _linear(query, query_t, qkv_weight, qkv_weight_t, qkv_bias, qkv_bias_t)
        return tuple(zip(y.chunk(3, -1), (None,) * 3 if y_t is None else y_t.chunk(3, -1)))
    weights = qkv_weight.chunk(3, 0)
    weights_t = (None,) * 3 if qkv_weight_t is None else qkv_weight_t.chunk(3, 0)
    biases = qkv_bias.chunk(3, 0)
    biases_t = (None,) * 3 if qkv_bias_t is None else qkv_bias_t.chunk(3, 0)
    return tuple(_linear(x, x_t, w, w_t, b, b_t)
                 for x, x_t, w, w_t, b, b_t in zip((query, key, value), (query_t, key_t, value_t), weights, weights_t,
                                                   biases, biases_t))


def _attention(query, query_t, key, key_t, value, value_t, num_head, qkv_weight, qkv_weight_t,
               qkv_bias, qkv_bias_t, mask, mask_type, need_probs_t=False):
    """Context (B, T, D) and attention probabilities (B, H, T, T), with tangents (the
    probabilities' tangent only when asked for: the context's needs only its row sums)."""
    scale = 1 / math.sqrt(query.shape[-1] // num_head)
    (q, q_t), (k, k_t), (v, v_t) = _projections(query, query_t, key, key_t, value, value_t,
                                                qkv_weight, qkv_weight_t, qkv_bias, qkv_bias_t)
    (q, q_t), (k, k_t), (v, v_t) = _heads(q, q_t, num_head, scale), _heads(k, k_t, num_head), _heads(v, v_t, num_head)
    scores = q @ k.mT
    if mask is None:
        probs = torch.softmax(scores, -1)
    else:  # the kernel turns a float mask into a boolean one (nonzero = masked out)
        probs = torch._masked_softmax(scores, mask.to(torch.bool), scores.dim() - 1, mask_type)
    context = probs @ v
    # ṡ = q̇ kᵀ + q k̇ᵀ; Ṗ = P ⊙ ṡ - P · rowsum(P ⊙ ṡ) (masked entries have P = 0 and stay 0);
    # Ṗ v = (P ⊙ ṡ) v - rowsum(P ⊙ ṡ) · context, without forming Ṗ
    scores_t = sum_tangents(None if q_t is None else q_t @ k.mT, None if k_t is None else q @ k_t.mT)
    probs_t = context_t = None
    if scores_t is not None:
        weighted = probs * scores_t
        row_sums = weighted.sum(-1, keepdim=True)
        context_t = torch.addcmul(weighted @ v, row_sums, context, value=-1)
        if need_probs_t:
            probs_t = torch.addcmul(weighted, probs, row_sums, value=-1)
    context_t = sum_tangents(context_t, None if v_t is None else probs @ v_t)
    merge = lambda t: t.transpose(1, 2).reshape(*t.shape[:1], t.shape[2], -1)  # noqa: E731
    return merge(context), None if context_t is None else merge(context_t), probs, probs_t


def _multi_head_attention(query, query_t, key, key_t, value, value_t, num_head, qkv_weight, qkv_weight_t,
                          qkv_bias, qkv_bias_t, proj_weight, proj_weight_t, proj_bias, proj_bias_t, mask, mask_type,
                          need_probs_t=False):
    context, context_t, probs, probs_t = _attention(query, query_t, key, key_t, value, value_t, num_head,
                                                    qkv_weight, qkv_weight_t, qkv_bias, qkv_bias_t, mask, mask_type,
                                                    need_probs_t)
    out, out_t = _linear(context, context_t, proj_weight, proj_weight_t, proj_bias, proj_bias_t)
    return out, out_t, probs, probs_t


def _refuse_nested(op, *tensors):
    if any(t is not None and t.is_nested for t in tensors):
        raise NotImplementedError(
            f"torch_fwdad: forward-mode AD through {op} on a nested tensor is not supported (only "
            f"_transformer_encoder_layer_fwd takes nested input, as nn.TransformerEncoder passes it)"
        )


def nested_from_mask_jvp(t_t, result):
    """Tangent of _nested_tensor_from_mask, padded: sequence i keeps its first len_i rows."""
    lengths = result._nested_tensor_size()[:, 0]
    longest = int(lengths.max()) if lengths.numel() else 0
    return t_t[:, :longest].masked_fill(_past_the_end(lengths, longest).to(t_t.device)[..., None], 0)


def nested_to_padded_jvp(self_t, result):
    """Tangent of to_padded_tensor: the kept padded tangent, widened with zeros to the output's shape."""
    widen = [size for have, want in zip(reversed(self_t.shape), reversed(result.shape)) for size in (0, want - have)]
    return F.pad(self_t, widen) if any(widen) else self_t


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
    _refuse_nested("_native_multi_head_attention", query, key, value)
    if out.numel() == 0:  # the kernel returns early on an empty batch
        return torch.zeros_like(out), None
    wants_weights = need_weights and weights is not None
    _, out_t, _, probs_t = _multi_head_attention(
        query, query_t, key, key_t, value, value_t, num_head, qkv_weight, qkv_weight_t, qkv_bias, qkv_bias_t,
        proj_weight, proj_weight_t, proj_bias, proj_bias_t, mask, mask_type, need_probs_t=wants_weights)
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
    """Tangent of _transformer_encoder_layer_fwd: the post-norm or pre-norm (norm_first) block

    x = src + attention(norm₁(src)); out = x + ffn(norm₂(x))      (norm_first)
    x = norm₁(src + attention(src)); out = norm₂(x + ffn(x))      (otherwise)
    """
    padding = None
    if src.is_nested:  # from nn.TransformerEncoder, without masks; src_t is already padded
        src, padding = _padded_sequences(src)
        mask, mask_type = padding, 1
    elif result.numel() == 0:
        return torch.zeros_like(result)
    norm1 = lambda x, x_t: _layer_norm(x, x_t, norm_weight_1, norm_weight_1_t, norm_bias_1, norm_bias_1_t, eps)  # noqa: E731
    norm2 = lambda x, x_t: _layer_norm(x, x_t, norm_weight_2, norm_weight_2_t, norm_bias_2, norm_bias_2_t, eps)  # noqa: E731

    def attention(x, x_t):
        out, out_t, _, _ = _multi_head_attention(
            x, x_t, x, x_t, x, x_t, num_heads, qkv_weight, qkv_weight_t, qkv_bias, qkv_bias_t,
            proj_weight, proj_weight_t, proj_bias, proj_bias_t, mask, mask_type)
        return out, out_t

    def feed_forward(x, x_t):
        hidden, hidden_t = _activation(*_linear(x, x_t, ffn_weight_1, ffn_weight_1_t, ffn_bias_1, ffn_bias_1_t), use_gelu)
        return _linear(hidden, hidden_t, ffn_weight_2, ffn_weight_2_t, ffn_bias_2, ffn_bias_2_t)

    x, x_t = src, src_t
    if norm_first:
        x, x_t = _add(x, x_t, *attention(*norm1(x, x_t)))
        _, x_t = _add(x, x_t, *feed_forward(*norm2(x, x_t)))
    else:
        x, x_t = norm1(*_add(x, x_t, *attention(x, x_t)))
        _, x_t = norm2(*_add(x, x_t, *feed_forward(x, x_t)))
    if padding is not None:
        return torch.zeros_like(src) if x_t is None else x_t.masked_fill(padding[..., None], 0)
    return _zeros_if_none(x_t, result)
