"""Samples for the inference fast-path kernels of nn.MultiheadAttention and nn.TransformerEncoderLayer."""

from functools import partial

import torch
from torch.testing import make_tensor

from . import FWD_OVER_REV, ErrorSample, Sample, samples_for, xfail

B, T, D, HEADS = 2, 3, 4, 2  # small: gradcheck differentiates every weight entry
# Differentiable inputs in groups of at most four (the partial check walks every subset):
# query, key, value / qkv_weight, qkv_bias, proj_weight, proj_bias
_MHA_GROUPS = ((0, 1, 2), (5, 6, 7, 8))


def _projections(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    scaled = lambda *shape: make_arg(*shape) * 0.5  # noqa: E731  (tame softmax)
    return scaled(3 * D, D), scaled(3 * D), scaled(D, D), scaled(D)


def _padding_mask(device):  # True = masked out; the second sequence is one shorter
    return torch.tensor([[False] * T, [False] * (T - 1) + [True]], device=device)


def _causal_mask(device):
    return torch.triu(torch.ones(T, T, dtype=torch.bool, device=device), 1)


def _fast_path_without_reverse_mode(op):
    return xfail(
        f"PyTorch has no reverse mode through the inference kernel {op} (nn modules take it only when "
        "nothing requires grad; autograd raises 'derivative ... is not implemented'): no VJP to compare "
        "with or to differentiate, and no gradient to compare bitwise; tests/test_models_fast_paths.py compares the primal "
        "bitwise and the tangents with finite differences end to end", "jvp_vjp", "unchanged", *FWD_OVER_REV)


# need_weights=False returns an undefined second output (None), which the check matrix's
# torch.func.jvp cannot return: that case is covered end to end in tests/test_models_fast_paths.py.
@samples_for("aten::_native_multi_head_attention", errors=lambda device: _mha_errors(device),
             xfails=_fast_path_without_reverse_mode("aten::_native_multi_head_attention"))
def native_multi_head_attention_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    x = lambda: make_arg(B, T, D)  # noqa: E731
    weights = _projections(dtype, device)
    additive = torch.zeros(T, T, dtype=dtype, device=device).masked_fill(_causal_mask(device), float("-inf"))
    cases = (((None, True, True), "averaged weights"), ((None, True, False), "per-head weights"),
             ((_padding_mask(device), True, True, 1), "key padding mask (type 1)"),
             ((_causal_mask(device), True, False, 0), "attention mask (type 0)"),
             ((additive, True, True, 0), "additive float mask, cast to bool by the kernel"))
    for (rest, desc) in cases:
        for group, diff in zip(("inputs", "weights"), _MHA_GROUPS):
            yield Sample((x(), x(), x(), D, HEADS, *weights, *rest), desc=f"{desc}, tangents on {group}", diff=diff)


def _mha_errors(device):
    x = torch.randn(B, T, D, dtype=torch.float64, device=device)
    weights = _projections(torch.float64, device)
    yield ErrorSample((x, x, x, D + 1, HEADS, *weights), desc="embed_dim differs from the query's")
    yield ErrorSample((x, x[:, :-1], x, D, HEADS, *weights), desc="query and key shapes differ")


# src, attention projections, norms, feed forward: every input in some group of at most four
_LAYER_GROUPS = {"src and qkv": (0, 3, 4), "projection and norm 1": (5, 6, 10, 11),
                 "norm 2 and ffn 1": (12, 13, 14, 15), "src and ffn 2": (0, 16, 17)}


def _layer_args(dtype, device, use_gelu, norm_first, mask=None, mask_type=None):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    scaled = lambda *shape: make_arg(*shape) * 0.5  # noqa: E731
    norm = lambda: (1 + scaled(D), scaled(D))  # noqa: E731
    return (make_arg(B, T, D), D, HEADS, *_projections(dtype, device), use_gelu, norm_first,
            1e-5, *norm(), *norm(), scaled(2 * D, D), scaled(2 * D), scaled(D, 2 * D), scaled(D), mask, mask_type)


@samples_for("aten::_transformer_encoder_layer_fwd", errors=lambda device: _layer_errors(device),
             xfails=_fast_path_without_reverse_mode("aten::_transformer_encoder_layer_fwd"))
def transformer_encoder_layer_samples(dtype, device):
    # the ReLU's kink at 0 is not met: pre-activations are continuous random values
    for use_gelu in (False, True):
        for norm_first in (False, True):
            for group, diff in _LAYER_GROUPS.items():
                yield Sample(_layer_args(dtype, device, use_gelu, norm_first),
                             desc=f"{'gelu' if use_gelu else 'relu'}, {'pre' if norm_first else 'post'}-norm, {group}",
                             diff=diff)
    yield Sample(_layer_args(dtype, device, True, False, _padding_mask(device), 1),
                 desc="key padding mask (type 1)", diff=_LAYER_GROUPS["src and qkv"])
    yield Sample(_layer_args(dtype, device, False, True, _causal_mask(device), 0),
                 desc="attention mask (type 0)", diff=_LAYER_GROUPS["src and qkv"])


def _layer_errors(device):
    args = list(_layer_args(torch.float64, device, False, False))
    args[2] = 3  # 4 is not divisible by 3 heads
    yield ErrorSample(tuple(args), desc="embed_dim not divisible by num_heads")


# nn.TransformerEncoder's nested-tensor path: a nested tensor cannot be an input or an
# output of the check matrix's functions, so each sample runs the round trip
# padded -> nested -> padded, the way the encoder calls these two kernels.
def _nested_round_trip_masks(device):  # True = a real token; the kernel keeps each row's first len_i tokens
    left_aligned = torch.tensor([[True] * T, [True] * (T - 1) + [False]], device=device)
    with_empty = torch.tensor([[True] + [False] * (T - 1), [False] * T], device=device)
    return ((left_aligned, "left aligned"), (with_empty, "an empty sequence"))


def _from_mask_then_pad(op, t, mask):
    return op(t, mask, False).to_padded_tensor(0.0, t.shape)


def _pad_after_from_mask(op, t, mask):
    return op(torch._nested_tensor_from_mask(t, mask, mask_check=False), 0.0, list(t.shape))


_NESTED_XFAILS = {
    **xfail("torch.func transforms (and the batched forward grad inside gradcheck, which is vmap) cannot "
            "wrap a nested tensor: plain PyTorch raises 'NestedTensorImpl doesn't support strides' there, "
            "tangents or not; the tangent is checked against finite differences under forward_ad in "
            "tests/test_models_nested.py",
            "gradcheck", "jvp_vjp", "partial", "second_order", "fwd_over_rev_func", "vmap_jvp", "rev_over_fwd_func",
            "rev_over_fwd_vjp"),
    **xfail("called directly with a tangent, _nested_tensor_from_mask is refused by design: only "
            "nn.TransformerEncoder.forward consumes the kept tangent, any other op on the nested result would "
            "drop it (tests/test_models_nested.py checks the refusal, and both rules against finite differences "
            "along the encoder's path)", "unchanged", "output_tangents", "rev_over_fwd_forward_ad"),
    **xfail("reverse mode of the round trip goes through _nested_from_padded, which has no forward formula "
            "in PyTorch, and through nested gradients, which cannot be dual", "fwd_over_rev_forward_ad"),
}


@samples_for("aten::_nested_tensor_from_mask", xfails=_NESTED_XFAILS)
def nested_tensor_from_mask_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for mask, desc in _nested_round_trip_masks(device):
        yield Sample((make_arg(B, T, D), mask), desc=desc, wrapper=_from_mask_then_pad)


@samples_for("aten::to_padded_tensor", xfails=_NESTED_XFAILS)
def to_padded_tensor_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    for mask, desc in _nested_round_trip_masks(device):
        yield Sample((make_arg(B, T, D), mask), desc=desc, wrapper=_pad_after_from_mask)
