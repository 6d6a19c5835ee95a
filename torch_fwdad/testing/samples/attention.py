"""Samples for the attention entries: fused SDPA kernels, the CPU flash backward, masked softmax.

The CPU flash kernel takes (B, H, L, E) tensors with equal head dims, an additive mask of
the query's dtype (F.scaled_dot_product_attention turns boolean masks into -inf/0 before
calling it), key/value with fewer heads under grouped-query attention, and no dropout.
Empty sequences are left out: the upstream kernel dies with SIGFPE on them.
The mask is passed by keyword, so the check matrix treats it as a constant (PyTorch's
backward gives it no gradient); mask tangents are tested in tests/test_attention.py.
"""

import math

from functools import partial

import torch
from torch.testing import make_tensor

from . import (
    FWD_OVER_REV, OWN_BACKWARD_NOT_IMPLEMENTED, REV_OVER_FWD, ErrorSample, Sample, no_reverse_mode, samples_for, third_order,
    xfail,
)

FLASH_CPU = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default


def qkv(B, H, L, S, E, *, dtype, device, kv_heads=None, Ev=None, noncontiguous=False):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    kv_heads = H if kv_heads is None else kv_heads
    return (
        make_arg(B, H, L, E, noncontiguous=noncontiguous),
        make_arg(B, kv_heads, S, E),
        make_arg(B, kv_heads, S, E if Ev is None else Ev),
    )


def hidden_keys_mask(L, S, *, dtype, device, full_row=None):
    """Additive mask: 0 where attended, -inf where hidden (a boolean mask as SDPA converts it)."""
    keep = torch.rand(L, S, generator=torch.Generator().manual_seed(L * 31 + S)) > 0.35
    keep[:, 0] = True  # every row keeps a key unless a fully hidden row is asked for
    if full_row is not None:
        keep[full_row] = False
    return torch.zeros(L, S, dtype=dtype, device=device).masked_fill(~keep.to(device), -math.inf)


def attention_cases(dtype, device):
    """(args, kwargs, desc) for the (B, H, L, E) kernels, shared by every SDPA overload."""
    yield qkv(1, 2, 3, 4, 2, dtype=dtype, device=device), {}, "L!=S"
    yield qkv(2, 1, 3, 3, 2, dtype=dtype, device=device), {"is_causal": True, "scale": 0.7}, "causal scale"
    yield qkv(1, 1, 4, 2, 2, dtype=dtype, device=device), {"is_causal": True}, "causal L>S"
    yield qkv(1, 1, 1, 4, 3, dtype=dtype, device=device), {}, "one query"
    yield qkv(1, 1, 3, 4, 2, dtype=dtype, device=device, noncontiguous=True), {}, "noncontiguous"
    yield (tuple(t.transpose(1, 2).contiguous().transpose(1, 2) for t in qkv(1, 2, 3, 4, 2, dtype=dtype, device=device)),
           {}, "(B, L, H, E) memory")
    yield qkv(1, 4, 3, 4, 2, dtype=dtype, device=device, kv_heads=2), {}, "grouped-query"
    yield qkv(1, 4, 3, 3, 2, dtype=dtype, device=device, kv_heads=1), {"is_causal": True}, "multi-query causal"
    # (the CPU kernel accepts an empty batch; zero heads, queries or keys crash it upstream)
    yield qkv(0, 2, 3, 4, 2, dtype=dtype, device=device), {}, "empty batch"


def masked_cases(dtype, device):
    """Cases with an additive mask, for the kernels that take one."""
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    yield (qkv(1, 2, 3, 4, 2, dtype=dtype, device=device),
           {"mask": make_arg(3, 4)}, "additive 2-d mask")
    yield (qkv(2, 2, 2, 3, 2, dtype=dtype, device=device),
           {"mask": make_arg(2, 1, 2, 3)}, "mask broadcast over heads")
    yield (qkv(1, 2, 4, 5, 2, dtype=dtype, device=device),
           {"mask": hidden_keys_mask(4, 5, dtype=dtype, device=device)}, "boolean mask as -inf")
    yield (qkv(1, 1, 3, 4, 2, dtype=dtype, device=device),
           {"mask": hidden_keys_mask(3, 4, dtype=dtype, device=device, full_row=1)}, "fully hidden row")
    yield (qkv(1, 4, 3, 4, 2, dtype=dtype, device=device, kv_heads=2),
           {"mask": make_arg(1, 4, 3, 4), "is_causal": False}, "grouped-query per-head mask")


def _flash_cpu_errors(device):
    q, k, v = qkv(1, 2, 3, 4, 2, dtype=torch.float64, device=device)
    yield ErrorSample((q, k, v, 0.1), desc="dropout")
    yield ErrorSample((q[0], k[0], v[0]), desc="3-d inputs")
    yield ErrorSample((q, k, v), {"attn_mask": torch.ones(3, 4, dtype=torch.bool, device=device)}, desc="boolean mask")
    yield ErrorSample((q, k, v[..., :1]), desc="value head dim differs")


# PyTorch's backward declares logsumexp non-differentiable (output_differentiability
# [True, False]) and drops its cotangent; torch_fwdad gives logsumexp its true tangent
# (flow-map training uses it), so <J t, u> = <t, Jᵀ u> cannot hold when u has a
# logsumexp part. Odd samples return the output alone and check it.
def _output_only(op, *args, **kwargs):
    return op(*args, **kwargs)[0]


def _both_outputs_or_output_only(index, args, kwargs, desc):
    # an empty batch has no logsumexp whose tangent PyTorch's backward could ignore
    if index % 2 or args[0].numel() == 0:
        return Sample(args, kwargs, desc + " (output)", wrapper=_output_only)
    return Sample(args, kwargs, desc + " (output and logsumexp)")


@samples_for("aten::_scaled_dot_product_flash_attention_for_cpu", errors=_flash_cpu_errors)
def flash_cpu_samples(dtype, device):
    cases = [((q, k, v, 0.0, options.get("is_causal", False)), {"scale": options.get("scale")}, desc)
             for (q, k, v), options, desc in attention_cases(dtype, device)]
    cases += [((q, k, v), {"attn_mask": options["mask"]}, desc) for (q, k, v), options, desc in masked_cases(dtype, device)]
    for index, (args, kwargs, desc) in enumerate(cases):
        yield _both_outputs_or_output_only(index, args, kwargs, desc)


def _flash_cpu_backward_args(q, k, v, is_causal=False, mask=None, scale=None, *, seed):
    out, lse = FLASH_CPU(q, k, v, 0.0, is_causal, attn_mask=mask, scale=scale)
    grad_out = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed)).to(out.device)
    return (grad_out, q, k, v, out, lse, 0.0, is_causal), {"attn_mask": mask, "scale": scale}


_FLASH_CPU_BACKWARD = "aten::_scaled_dot_product_flash_attention_for_cpu_backward"


@samples_for(_FLASH_CPU_BACKWARD, xfails=(
    no_reverse_mode(_FLASH_CPU_BACKWARD, "tests/test_attention.py, with Hessian-vector products against the MATH backend")
    | third_order(_FLASH_CPU_BACKWARD, OWN_BACKWARD_NOT_IMPLEMENTED)))
def flash_cpu_backward_samples(dtype, device):
    # out and lse are inputs of the backward kernel: the samples take them from the
    # forward kernel, and the checks perturb them independently, as the kernel allows.
    cases = [
        (qkv(1, 2, 3, 4, 2, dtype=dtype, device=device), {}, "L!=S"),
        (qkv(1, 2, 3, 3, 2, dtype=dtype, device=device), {"is_causal": True, "scale": 0.6}, "causal scale"),
        (qkv(1, 4, 2, 3, 2, dtype=dtype, device=device, kv_heads=2), {}, "grouped-query"),
        (qkv(1, 1, 3, 4, 2, dtype=dtype, device=device),
         {"mask": hidden_keys_mask(3, 4, dtype=dtype, device=device)}, "boolean mask as -inf"),
        (qkv(0, 2, 3, 4, 2, dtype=dtype, device=device), {}, "empty batch"),
    ]
    for seed, ((q, k, v), options, desc) in enumerate(cases):
        args, kwargs = _flash_cpu_backward_args(q, k, v, seed=seed, **options)
        yield Sample(args, kwargs, desc)


# ---- kernels of other devices: run by tests/test_attention.py through the rule itself


def _sdpa_level_samples(dtype, device, with_bias, extra):
    """Argument tuples of the (B, H, L, E) SDPA-level kernels; `extra` inserts their flags."""
    cases = list(attention_cases(dtype, device)) + (list(masked_cases(dtype, device)) if with_bias else [])
    for (q, k, v), options, desc in cases:
        yield Sample(extra(q, k, v, options), {"scale": options.get("scale")}, desc)


@samples_for("aten::_scaled_dot_product_flash_attention", cpu_runnable=False)
def cuda_flash_samples(dtype, device):
    # L != S with is_causal is refused by SDPA for flash (bottom-right alignment); the
    # rule follows the kernel's bottom-right alignment anyway.
    yield from _sdpa_level_samples(dtype, device, False, lambda q, k, v, o: (q, k, v, 0.0, o.get("is_causal", False)))


@samples_for("aten::_scaled_dot_product_efficient_attention", cpu_runnable=False)
def efficient_samples(dtype, device):
    yield from _sdpa_level_samples(
        dtype, device, True, lambda q, k, v, o: (q, k, v, o.get("mask"), True, 0.0, o.get("is_causal", False)))


@samples_for("aten::_scaled_dot_product_cudnn_attention", cpu_runnable=False)
def cudnn_samples(dtype, device):
    yield from _sdpa_level_samples(
        dtype, device, True, lambda q, k, v, o: (q, k, v, o.get("mask"), True, 0.0, o.get("is_causal", False)))


@samples_for("aten::_scaled_dot_product_fused_attention_overrideable", cpu_runnable=False)
def overrideable_samples(dtype, device):
    yield from _sdpa_level_samples(
        dtype, device, True, lambda q, k, v, o: (q, k, v, o.get("mask"), 0.0, o.get("is_causal", False)))


@samples_for("aten::_cudnn_attention_forward", cpu_runnable=False)
def cudnn_forward_samples(dtype, device):
    yield from _sdpa_level_samples(
        dtype, device, True,
        lambda q, k, v, o: (q, k, v, o.get("mask"), None, None, q.size(2), k.size(2), True, 0.0, o.get("is_causal", False)))


def _bthe(q, k, v):
    return tuple(t.transpose(1, 2) for t in (q, k, v))


@samples_for("aten::_flash_attention_forward", cpu_runnable=False)
def flash_forward_samples(dtype, device):
    for (q, k, v), options, desc in attention_cases(dtype, device):
        q, k, v = _bthe(q, k, v)
        yield Sample((q, k, v, None, None, q.size(1), k.size(1), 0.0, options.get("is_causal", False), False),
                     {"scale": options.get("scale")}, desc)


@samples_for("aten::_efficient_attention_forward", cpu_runnable=False)
def efficient_forward_samples(dtype, device):
    for (q, k, v), options, desc in list(attention_cases(dtype, device)) + list(masked_cases(dtype, device)):
        q, k, v = _bthe(q, k, v)
        mask_type = 1 if options.get("is_causal") else 0
        yield Sample((q, k, v, options.get("mask"), None, None, q.size(1), k.size(1), 0.0, mask_type, True),
                     {"scale": options.get("scale")}, desc)
    q, k, v = _bthe(*qkv(1, 2, 3, 5, 2, dtype=dtype, device=device))
    yield Sample((q, k, v, None, None, None, 3, 5, 0.0, 2, True), {}, "causal bottom-right")


# ---- masked softmax


def _masked_softmax_errors(device):
    x = torch.randn(2, 3, dtype=torch.float64, device=device)
    yield ErrorSample((x, torch.zeros(2, 3, device=device)), desc="mask not boolean")


@samples_for("aten::_masked_softmax", errors=_masked_softmax_errors, xfails=xfail(
    "PyTorch's _masked_softmax_backward has no forward formula and torch_fwdad no rule for it yet "
    "(NotImplementedError from PyTorch, not a wrong value)", *FWD_OVER_REV))
def masked_softmax_samples(dtype, device):
    make_arg = partial(make_tensor, dtype=dtype, device=device)
    generator = torch.Generator().manual_seed(0)

    def hide(*shape):
        mask = torch.rand(*shape, generator=generator) > 0.6
        mask[..., 0] = False
        return mask.to(device)

    B, H, L = 2, 1, 3
    x = make_arg(B, H, L, L)
    yield Sample((x, hide(B, H, L, L)), {}, "mask like input (type 2)")
    yield Sample((x, hide(B, H, L, L), 3, 2), {}, "explicit dim and mask_type 2")
    no_backward = xfail("PyTorch's _masked_softmax_backward raises 'Mask shape should match grad shape' for the "
                        "L x L and B x L mask types: reverse mode does not exist upstream", "jvp_vjp", "unchanged",
                        *REV_OVER_FWD)
    yield Sample((x, hide(L, L), 3, 0), {}, "src_mask L x L (type 0)", xfails=no_backward)
    yield Sample((x, hide(B, L), 3, 1), {}, "key padding B x L (type 1)", xfails=no_backward)
    # no fully hidden row: the CPU kernel returns NaN there (the fast path avoids such rows)
    yield Sample((make_arg(4, 5, noncontiguous=True), hide(4, 5)), {}, "2-d noncontiguous")
    yield Sample((make_arg(0, 3), hide(0, 3)), {}, "empty")
