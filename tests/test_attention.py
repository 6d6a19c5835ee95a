"""Attention end to end: F.scaled_dot_product_attention, nn.MultiheadAttention,
nn.TransformerEncoderLayer and a ViT-style block, against the MATH backend, reverse
mode or finite differences; the device-agnostic fused-kernel rules called directly;
and peak memory of a long sequence against the MATH workaround."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import torch_fwdad  # noqa: F401
from torch_fwdad._generated import jvp_rules
from torch_fwdad.testing import sample_registry

F64 = torch.float64


def randn(*shape, dtype=F64, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def math_jvp(fn, primals, tangents):
    with sdpa_kernel(SDPBackend.MATH):
        return torch.func.jvp(fn, primals, tangents)


def assert_tangents_close(got, expected, **tol):
    for g, e in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple) else (expected,)):
        torch.testing.assert_close(g, e, **tol)


# ------------------------------------------------------------------ F.scaled_dot_product_attention


SDPA_CASES = {
    "plain": dict(shapes=((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4)), options={}),
    "causal scale": dict(shapes=((1, 2, 6, 4),) * 3, options={"is_causal": True, "scale": 0.3}),
    "causal L>S": dict(shapes=((1, 2, 6, 4), (1, 2, 4, 4), (1, 2, 4, 4)), options={"is_causal": True}),
    "gqa": dict(shapes=((1, 4, 5, 4), (1, 2, 5, 4), (1, 2, 5, 4)), options={"enable_gqa": True}),
    "Ev != E (math path)": dict(shapes=((1, 2, 5, 4), (1, 2, 6, 4), (1, 2, 6, 3)), options={}),
}


def _uses_fused_kernel(fn, *args):
    with torch.profiler.profile() as prof:
        fn(*args)
    return any("_scaled_dot_product_flash_attention_for_cpu" in e.key for e in prof.key_averages())


@pytest.mark.parametrize("case", SDPA_CASES, ids=list(SDPA_CASES))
def test_sdpa_jvp_matches_math_backend(case):
    shapes, options = SDPA_CASES[case]["shapes"], SDPA_CASES[case]["options"]
    primals = tuple(randn(*s, seed=i) for i, s in enumerate(shapes))
    tangents = tuple(randn(*s, seed=10 + i) for i, s in enumerate(shapes))

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, **options)

    if case != "Ev != E (math path)":
        assert _uses_fused_kernel(fn, *primals), "the case should exercise the fused CPU kernel"
    out, tangent = torch.func.jvp(fn, primals, tangents)
    ref_out, ref_tangent = math_jvp(fn, primals, tangents)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(tangent, ref_tangent)


@pytest.mark.parametrize("mask_kind", ["boolean", "additive broadcast", "additive with tangent", "mask tangent only"])
def test_sdpa_masks(mask_kind):
    q, k, v = randn(2, 2, 4, 3, seed=1), randn(2, 2, 5, 3, seed=2), randn(2, 2, 5, 3, seed=3)
    tq, tk, tv = randn(2, 2, 4, 3, seed=4), randn(2, 2, 5, 3, seed=5), randn(2, 2, 5, 3, seed=6)
    if mask_kind == "boolean":
        mask = torch.rand(4, 5, generator=torch.Generator().manual_seed(0)) > 0.4
        mask[:, 0] = True
        primals, tangents = (q, k, v), (tq, tk, tv)
    else:
        mask = randn(2, 1, 4, 5, seed=7)
        mask_t = randn(2, 1, 4, 5, seed=8) if "tangent" in mask_kind else torch.zeros_like(mask)
        primals, tangents = (q, k, v, mask), (tq, tk, tv, mask_t)
        if mask_kind == "mask tangent only":
            primals, tangents = (mask,), (mask_t,)

    def fn(*args):
        if mask_kind == "mask tangent only":
            args = (q, k, v) + args
        q_, k_, v_, m = args if len(args) == 4 else (*args, mask)
        return F.scaled_dot_product_attention(q_, k_, v_, attn_mask=m)

    assert _uses_fused_kernel(fn, *primals)
    assert_tangents_close(torch.func.jvp(fn, primals, tangents)[1], math_jvp(fn, primals, tangents)[1])


def test_logsumexp_tangent_against_finite_differences():
    op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default
    q, k, v = randn(1, 2, 5, 4, seed=1), randn(1, 2, 6, 4, seed=2), randn(1, 2, 6, 4, seed=3)
    t = tuple(randn(*x.shape, seed=9 + i) for i, x in enumerate((q, k, v)))
    mask = randn(5, 6, seed=4)

    def lse(q, k, v):
        return op(q, k, v, 0.0, True, attn_mask=mask)[1]

    _, got = torch.func.jvp(lse, (q, k, v), t)
    eps = 1e-6
    plus = lse(*(x + eps * dx for x, dx in zip((q, k, v), t)))
    minus = lse(*(x - eps * dx for x, dx in zip((q, k, v), t)))
    torch.testing.assert_close(got, (plus - minus) / (2 * eps), atol=1e-7, rtol=1e-6)


def test_float32_tolerances_realistic_shape():
    shape = (2, 4, 128, 32)
    primals = tuple(randn(*shape, dtype=torch.float32, seed=i) for i in range(3))
    tangents = tuple(randn(*shape, dtype=torch.float32, seed=5 + i) for i in range(3))
    fn = (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    got = torch.func.jvp(fn, primals, tangents)[1]
    expected = math_jvp(fn, tuple(p.double() for p in primals), tuple(t.double() for t in tangents))[1]
    torch.testing.assert_close(got, expected.float(), atol=2e-4, rtol=2e-4)


def test_blocks_agree_with_one_block(monkeypatch):
    import torch_fwdad.formulas.attention as attention

    primals = tuple(randn(1, 2, 9, 4, seed=i) for i in range(3))
    tangents = tuple(randn(1, 2, 9, 4, seed=5 + i) for i in range(3))
    fn = (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    whole = torch.func.jvp(fn, primals, tangents)[1]
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", 2 * 9 * 2)  # two query rows a block
    monkeypatch.setattr(attention, "_matmul_threads", lambda: 2)
    assert attention.tile_sizes(1, 2, 9, 9, threads=2) == (1, 2, 2)
    torch.testing.assert_close(torch.func.jvp(fn, primals, tangents)[1], whole)


# (BLOCK_ELEMENTS, threads) -> tile of a (B=2, H=4, L=9, S=7) problem
TILINGS = {"rows": ((8 * 2 * 7, 8), (2, 4, 2)), "heads": ((2 * 2 * 9 * 7, 1), (2, 2, 9)),
           "heads and batch": ((9 * 7, 1), (1, 1, 9)), "everything": ((7, 1), (1, 1, 1))}


def gqa_problem(mask, query_requires_grad=False):
    """q (B=2, H=4, L=9), key/value with 2 heads (S=7), mask, the CPU kernel's out and lse, tangents."""
    problem = {"q": randn(2, 4, 9, 5, seed=1).requires_grad_(query_requires_grad), "q_t": randn(2, 4, 9, 5, seed=2)}
    problem.update(zip(("k", "v", "k_t", "v_t"), (randn(2, 2, 7, 5, seed=3 + i) for i in range(4))))
    problem["mask"] = randn(1, 4, 9, 7, seed=9) if mask.startswith("additive") else None
    problem["mask_t"] = None if problem["mask"] is None else randn(1, 4, 9, 7, seed=10)
    problem["causal"] = mask == "causal"
    problem["out"], problem["lse"] = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        problem["q"], *(problem[n].repeat_interleave(2, 1) for n in "kv"), is_causal=problem["causal"],
        attn_mask=problem["mask"])[:2]
    return problem


def tiled_and_whole(monkeypatch, tiling, compute):
    """compute() on one tile, then split as TILINGS[tiling] says: pairs (tiled, whole)."""
    import torch_fwdad.formulas.attention as attention

    assert attention.tile_sizes(2, 4, 9, 7, attention._matmul_threads()) == (2, 4, 9)
    whole = compute()
    (block, threads), tile = TILINGS[tiling]
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", block)
    monkeypatch.setattr(attention, "_matmul_threads", lambda: threads)
    assert attention.tile_sizes(2, 4, 9, 7, threads) == tile
    return list(zip(compute(), whole))


@pytest.mark.parametrize("tiling", TILINGS, ids=list(TILINGS))
@pytest.mark.parametrize("mask", ["none", "additive, broadcast over batch", "causal"])
@pytest.mark.parametrize("outer", ["values only", "reverse mode watching"])
def test_tiles_agree_with_one_tile(monkeypatch, tiling, mask, outer):
    # values only: each tile is written over the previous tile's buffers; with reverse
    # mode watching the inputs, every tile is fresh
    from torch_fwdad.formulas.attention import attention_jvp

    p = gqa_problem(mask, query_requires_grad=outer != "values only")
    pairs = tiled_and_whole(monkeypatch, tiling, lambda: attention_jvp(
        (p["q"], p["k"], p["v"], p["mask"]), (p["q_t"], p["k_t"], p["v_t"], p["mask_t"]), p["out"], p["lse"],
        scale=None, is_causal=p["causal"]))
    for got, expected in pairs:
        assert got.requires_grad == (outer != "values only")
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("tiling", TILINGS, ids=list(TILINGS))
@pytest.mark.parametrize("mask", ["additive, broadcast over batch", "causal"])
def test_backward_tiles_agree_with_one_tile(monkeypatch, tiling, mask):
    # the flash backward's tangents (Hessian-vector products): per-query dq joined over
    # row tiles, per-key dk and dv summed over them
    from torch_fwdad.formulas.attention import flash_attention_cpu_backward_jvp

    p = gqa_problem(mask)
    g, g_t = randn(2, 4, 9, 5, seed=11), randn(2, 4, 9, 5, seed=12)
    out_t, lse_t = randn(*p["out"].shape, seed=13), randn(*p["lse"].shape, seed=14)
    pairs = tiled_and_whole(monkeypatch, tiling, lambda: flash_attention_cpu_backward_jvp(
        (g, p["q"], p["k"], p["v"], p["out"], p["lse"], p["mask"]),
        (g_t, p["q_t"], p["k_t"], p["v_t"], out_t, lse_t, p["mask_t"]), scale=None, is_causal=p["causal"],
        dropout_p=0.0))
    for got, expected in pairs:
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("mask", ["none", "causal"])
def test_tiles_on_worker_threads_agree_with_this_thread(monkeypatch, python_tile_loop, mask):
    # values only, several tiles: worker threads (one intra-op thread each) take the
    # tiles; the same problem computed tile after tile in this thread must agree, and the
    # thread count of this thread and of threads started later must be left as they were
    import threading

    import torch_fwdad.formulas.attention as attention

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        p = gqa_problem(mask)
        monkeypatch.setattr(attention, "BLOCK_ELEMENTS", 2 * 7 * 2)  # (1, 1, 2) tiles: 40 of them
        monkeypatch.setattr(attention, "CACHE_TILE_ELEMENTS", 2 * 7)  # in-place tiles of 2 rows: 40 too

        def tangents(workers):
            monkeypatch.setattr(attention, "USE_TILE_WORKERS", workers)
            ran_on = set()
            original = attention._run_on_workers
            monkeypatch.setattr(attention, "_run_on_workers", lambda c, t: ran_on.add(1) or original(c, t))
            result = attention.attention_jvp((p["q"], p["k"], p["v"]), (p["q_t"], p["k_t"], p["v_t"]),
                                             p["out"], p["lse"], scale=None, is_causal=p["causal"])
            assert bool(ran_on) == workers
            return result

        for got, expected in zip(tangents(True), tangents(False)):
            torch.testing.assert_close(got, expected)
        assert torch.get_num_threads() == 2
        seen = []
        thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        thread.start()
        thread.join(timeout=60)
        assert seen == [2], "a thread started after the workers should get the process default"
    finally:
        torch.set_num_threads(threads)


def test_vmap_over_tangents_and_jacfwd():
    q, k, v = randn(1, 1, 3, 2, seed=1), randn(1, 1, 4, 2, seed=2), randn(1, 1, 4, 2, seed=3)
    fn = (lambda q: F.scaled_dot_product_attention(q, k, v))
    assert _uses_fused_kernel(fn, q)
    with sdpa_kernel(SDPBackend.MATH):
        expected = torch.func.jacrev(fn)(q)
    torch.testing.assert_close(torch.func.jacfwd(fn)(q), expected)


# ------------------------------------------------------------------ second order


def _attention_loss(q, k, v):
    return (F.scaled_dot_product_attention(q, k, v, is_causal=True).sin()).sum()


def test_hessian_vector_product_forward_over_reverse():
    primals = (randn(1, 2, 5, 3, seed=1), randn(1, 2, 5, 3, seed=2), randn(1, 2, 5, 3, seed=3))
    vector = tuple(randn(*p.shape, seed=7 + i) for i, p in enumerate(primals))
    grad = torch.func.grad(_attention_loss, argnums=(0, 1, 2))
    with torch.profiler.profile() as prof:
        got = torch.func.jvp(grad, primals, vector)[1]
    assert any("flash_attention_for_cpu_backward" in e.key for e in prof.key_averages())
    expected = math_jvp(grad, primals, vector)[1]
    assert_tangents_close(got, expected)


def test_hessian_vector_product_reverse_over_forward():
    primals = (randn(1, 2, 4, 3, seed=1), randn(1, 2, 4, 3, seed=2), randn(1, 2, 4, 3, seed=3))
    vector = tuple(randn(*p.shape, seed=7 + i) for i, p in enumerate(primals))

    def directional(q, k, v):
        return torch.func.jvp(_attention_loss, (q, k, v), vector)[1]

    got = torch.func.grad(directional, argnums=(0, 1, 2))(*primals)
    with sdpa_kernel(SDPBackend.MATH):
        expected = torch.func.grad(directional, argnums=(0, 1, 2))(*primals)
    assert_tangents_close(got, expected)


# ------------------------------------------------------------------ modules


def _module_jvp_vs_math(module, inputs, tangents, **tol):
    got = torch.func.jvp(module, inputs, tangents)
    expected = math_jvp(module, inputs, tangents)
    assert_tangents_close(got[1], expected[1], **tol)
    return got


@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention(need_weights):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True, dtype=F64).eval()
    x, t = randn(2, 5, 8, seed=1), randn(2, 5, 8, seed=2)
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])

    def fn(x):
        return mha(x, x, x, key_padding_mask=padding, need_weights=need_weights)[0]

    _module_jvp_vs_math(fn, (x,), (t,))
    eps = 1e-6
    torch.testing.assert_close(torch.func.jvp(fn, (x,), (t,))[1], (fn(x + eps * t) - fn(x - eps * t)) / (2 * eps),
                               atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("fastpath", [True, False], ids=["fastpath", "no_fastpath"])
def test_transformer_encoder_layer(train, fastpath):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, dtype=F64).train(train)
    x, t = randn(2, 6, 8, seed=1), randn(2, 6, 8, seed=2)
    padding = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(fastpath)
    try:
        fn = (lambda x: layer(x, src_key_padding_mask=padding, is_causal=False))
        _module_jvp_vs_math(fn, (x,), (t,))
        # HVP of a scalar loss through the layer (forward-over-reverse)
        grad = torch.func.grad(lambda x: fn(x).square().sum())
        _module_jvp_vs_math(grad, (x,), (t,))
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


class ViTBlock(nn.Module):
    def __init__(self, dim=8, heads=2, dtype=F64):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim, dtype=dtype), nn.LayerNorm(dim, dtype=dtype)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim, dtype=dtype), nn.Linear(dim, dim, dtype=dtype)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim, dtype=dtype), nn.GELU(), nn.Linear(2 * dim, dim, dtype=dtype))

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.norm2(x))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_vit_block_jvp_matches_reverse_mode(dtype):
    torch.manual_seed(0)
    block = ViTBlock(dtype=dtype)
    x = randn(2, 7, 8, dtype=dtype, seed=1)
    params = dict(block.named_parameters())
    tangents = {name: randn(*param.shape, dtype=dtype, seed=3 + i) for i, (name, param) in enumerate(params.items())}

    def fn(params, x):
        return torch.func.functional_call(block, params, (x,))

    assert _uses_fused_kernel(block, x)
    out, tangent = torch.func.jvp(lambda p: fn(p, x), (params,), (tangents,))
    cotangent = randn(*out.shape, dtype=dtype, seed=2)
    _, vjp = torch.func.vjp(lambda p: fn(p, x), params)
    (grads,) = vjp(cotangent)
    forward = (tangent * cotangent).sum()
    backward = sum((grads[n] * tangents[n]).sum() for n in params)
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else {}
    torch.testing.assert_close(forward, backward, **tol)


# ------------------------------------------------------------------ fused kernels of other devices


def _reference(q, k, v, bias, scale, causal_offset):
    """(out, lse) by plain math in (B, H, L, E) layout; GQA by repeating heads."""
    heads = q.size(1)
    k, v = (t.repeat_interleave(heads // t.size(1), 1) for t in (k, v))
    s = q @ k.mT * (q.size(-1) ** -0.5 if scale is None else scale)
    if bias is not None:
        s = s + bias
    if causal_offset is not None:
        keep = torch.ones(q.size(2), k.size(2), dtype=torch.bool).tril(causal_offset)
        s = s.masked_fill(~keep, -math.inf)
    lse = torch.logsumexp(s, -1)
    # rows without any key: the fused kernels return 0 (softmax alone would give NaN)
    hidden = torch.isneginf(lse).unsqueeze(-1)
    p = torch.where(hidden, torch.zeros_like(s), torch.softmax(s, -1))
    return p @ v, torch.where(hidden.squeeze(-1), torch.zeros_like(lse), lse)


def _layout(name, args, kwargs):
    """Where q, k, v, bias sit in `args`, the kernel's layout and causal alignment."""
    q = args[0]
    sequence_first = name in ("aten::_flash_attention_forward", "aten::_efficient_attention_forward")
    L, S = (q.size(1), args[1].size(1)) if sequence_first else (q.size(2), args[1].size(2))
    bias_at = {"aten::_scaled_dot_product_efficient_attention": 3, "aten::_scaled_dot_product_cudnn_attention": 3,
               "aten::_scaled_dot_product_fused_attention_overrideable": 3, "aten::_cudnn_attention_forward": 3,
               "aten::_efficient_attention_forward": 3}.get(name)
    if name == "aten::_efficient_attention_forward":
        mask_type = args[9]
        causal = None if mask_type == 0 else (0 if mask_type == 1 else S - L)
    else:
        causal_at = {"aten::_scaled_dot_product_flash_attention": 4, "aten::_flash_attention_forward": 8,
                     "aten::_cudnn_attention_forward": 10}.get(name, 6 if bias_at == 3 and name != "aten::_scaled_dot_product_fused_attention_overrideable" else 5)
        bottom_right = name in ("aten::_scaled_dot_product_flash_attention", "aten::_flash_attention_forward")
        causal = None if not args[causal_at] else (S - L if bottom_right else 0)
    return sequence_first, bias_at, causal


DEVICE_KERNELS = {name: source for name, source in sample_registry().items()
                  if not source.cpu_runnable and "attention" in name}


def _device_cases():
    for name, source in DEVICE_KERNELS.items():
        for index, sample in enumerate(source.generate(F64, "cpu")):
            yield pytest.param(name, sample, id=f"{name.split('::')[1]}-{index}-{sample.desc}".replace(" ", "_"))


def _rule(name):
    op = name.split("::")[1]
    return getattr(jvp_rules, f"jvp_{op}")


@pytest.mark.parametrize("name, sample", list(_device_cases()))
def test_device_kernel_rule_matches_math(name, sample):
    """Call the generated rule with outputs from the math reference, compare with its JVP."""
    args = list(sample.args)
    sequence_first, bias_at, causal = _layout(name, args, sample.kwargs)
    swap = (lambda t: t.transpose(1, 2) if sequence_first and t is not None else t)
    positions = [0, 1, 2] + ([bias_at] if bias_at is not None and args[bias_at] is not None else [])
    tangents = {i: randn(*args[i].shape, seed=20 + i) for i in positions}

    def reference(*xs):
        q, k, v = (swap(x) for x in xs[:3])
        out, lse = _reference(q, k, v, xs[3] if len(xs) > 3 else None, sample.kwargs.get("scale"), causal)
        return swap(out), lse

    (out, lse), (out_t, lse_t) = torch.func.jvp(reference, tuple(args[i] for i in positions),
                                                tuple(tangents[i] for i in positions))
    schema = getattr(torch.ops.aten, name.split("::")[1]).default._schema
    outputs = (out, lse) + (None,) * (len(schema.returns) - 2)
    primals = [args[i] if i < len(args) else None for i in range(len(schema.arguments))]
    for key, value in sample.kwargs.items():
        primals[[a.name for a in schema.arguments].index(key)] = value
    for i, argument in enumerate(schema.arguments):  # defaults of trailing arguments
        if i >= len(args) and argument.name not in sample.kwargs and argument.has_default_value():
            primals[i] = argument.default_value
    rule_tangents = [tangents.get(i) for i in range(len(schema.arguments))]
    got = _rule(name)(tuple(primals), tuple(rule_tangents), outputs)
    torch.testing.assert_close(got[0], out_t)
    torch.testing.assert_close(got[1], lse_t)


def test_efficient_padded_or_missing_logsumexp():
    q, k, v = (randn(1, 2, 5, 3, seed=i) for i in range(3))
    t = tuple(randn(1, 2, 5, 3, seed=5 + i) for i in range(3))
    (out, lse), (out_t, lse_t) = torch.func.jvp(lambda q, k, v: _reference(q, k, v, None, None, None), (q, k, v), t)
    rule = _rule("aten::_scaled_dot_product_efficient_attention")
    padded = torch.cat([lse, torch.full((1, 2, 27), math.inf, dtype=F64)], -1)  # CUDA pads L to 32
    got = rule((q, k, v, None, True, 0.0, False, None), (*t, None, None, None, None, None), (out, padded, None, None))
    torch.testing.assert_close(got[0], out_t)
    torch.testing.assert_close(got[1][..., :5], lse_t)
    assert got[1].shape == padded.shape and not got[1][..., 5:].any()
    empty = torch.empty(0, dtype=F64)  # compute_log_sumexp=False: lse is recomputed
    got = rule((q, k, v, None, False, 0.0, False, None), (*t, None, None, None, None, None), (out, empty, None, None))
    torch.testing.assert_close(got[0], out_t)
    assert got[1] is None


def test_dropout_is_refused_with_advice():
    q, k, v = (randn(1, 1, 3, 2, seed=i) for i in range(3))
    rule = _rule("aten::_scaled_dot_product_efficient_attention")
    with pytest.raises(RuntimeError, match="dropout_p=0"):
        rule((q, k, v, None, True, 0.1, False, None), (q, None, None, None, None, None, None, None), (q, q[..., 0], None, None))


def test_varlen_is_refused():
    q, k, v = (randn(1, 3, 1, 2, seed=i) for i in range(3))
    cum = torch.tensor([0, 3], dtype=torch.int32)
    rule = _rule("aten::_flash_attention_forward")
    primals = (q, k, v, cum, cum, 3, 3, 0.0, False, False, None, None, None, None, None, None, None)
    tangents = (q,) + (None,) * 16
    with pytest.raises(NotImplementedError, match="cum_seq_k, cum_seq_q"):
        rule(primals, tangents, (q, q[:, :, 0], None, None, None))


def test_cudnn_varlen_is_refused_naming_the_op():
    q = randn(1, 1, 3, 2, seed=0)
    cum = torch.tensor([0, 3], dtype=torch.int32)
    rule = _rule("aten::_cudnn_attention_forward")
    primals = (q, q, q, None, cum, cum, 3, 3, True, 0.0, False, False, None)
    tangents = (q,) + (None,) * 12
    with pytest.raises(NotImplementedError, match="_cudnn_attention_forward with cum_seq_k, cum_seq_q"):
        rule(primals, tangents, (q, q[..., 0], None, None, None, None, None, None, None))


# ------------------------------------------------------------------ memory


_PEAK_SCRIPT = """
import json, sys, torch, torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch_fwdad
torch.set_num_threads(1)
method, L = sys.argv[1], int(sys.argv[2])
g = torch.Generator().manual_seed(0)
p = tuple(torch.randn(1, 4, L, 16, generator=g) for _ in range(3))
t = tuple(torch.randn(1, 4, L, 16, generator=g) for _ in range(3))
def call():
    if method == "MATH":
        with sdpa_kernel(SDPBackend.MATH):
            return torch.func.jvp(F.scaled_dot_product_attention, p, t)
    return torch.func.jvp(F.scaled_dot_product_attention, p, t)
small = tuple(x[:, :, :8] for x in p)
torch.func.jvp(F.scaled_dot_product_attention, small, small)
def status_mb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith(field + ":"))
with open("/proc/self/clear_refs", "w") as clear:  # peak := current (ru_maxrss keeps the parent's)
    clear.write("5")
before = status_mb("VmRSS")
call()
print(json.dumps(status_mb("VmHWM") - before))
"""


def _peak_mb(method, L):
    # a fixed mmap threshold: freed tensors leave RSS at once, so RSS follows live tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, method, str(L)], capture_output=True, text=True,
                          check=True, timeout=300, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_long_sequence_peak_memory_below_math_workaround():
    # L = 2048, 4 heads: one L x S float32 matrix for all heads is 64 MB; the MATH
    # workaround holds several, the blockwise rule one 8 MB block of each kind.
    L = 2048
    ours, workaround = _peak_mb("fwdad", L), _peak_mb("MATH", L)
    assert workaround > 128, f"MATH workaround peak {workaround:.0f} MB: measurement broken?"
    assert ours < 0.4 * workaround, f"torch_fwdad peak {ours:.0f} MB vs MATH {workaround:.0f} MB"


# ------------------------------------------------------------------ in-place tiles in cache


def _choose_tile_loop(monkeypatch, path):
    """Values-only tiles by the C++ tile loop (formulas/_attention_tiles.cpp) or in Python."""
    from torch_fwdad.formulas import attention_tiles

    if path == "c++" and not attention_tiles.extension.info()["built"]:
        pytest.skip(f"C++ tile loop not built here: {attention_tiles.extension.info()['reason']}")
    monkeypatch.setattr(attention_tiles.extension, "active", path == "c++")
    return path


@pytest.fixture(params=["c++", "python"])
def tile_loop(request, monkeypatch):
    return _choose_tile_loop(monkeypatch, request.param)


@pytest.fixture
def python_tile_loop(monkeypatch):
    return _choose_tile_loop(monkeypatch, "python")


def _count_values_only_tiles(monkeypatch, path):
    """A list that gets one entry (the Python loop's keyword arguments, or "c++") per call
    of the values-only tile loop of `path`."""
    import torch_fwdad.formulas.attention as attention

    reached = []
    if path == "c++":
        original_cpp = attention._output_tangent_in_cpp
        monkeypatch.setattr(attention, "_output_tangent_in_cpp",
                            lambda *a: reached.append("c++") or original_cpp(*a))
    else:
        original = attention._terms_in_cache_tiles
        monkeypatch.setattr(attention, "_terms_in_cache_tiles",
                            lambda *a, **kw: reached.append(kw) or original(*a, **kw))
    return reached


def _reference_attention(q, k, v, mask, scale, causal_offset):
    """(out, lse) of attention written out in plain ops (B, H, L, E); key/value heads repeated."""
    k, v = (t.repeat_interleave(q.size(1) // t.size(1), 1) for t in (k, v))
    s = scale * q @ k.mT
    if mask is not None:
        s = s + mask
    if causal_offset is not None:
        hidden = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).triu(causal_offset + 1)
        s = s.masked_fill(hidden, -math.inf)
    lse = torch.logsumexp(s, -1)
    return torch.softmax(s, -1) @ v, lse


# name -> (L, S, heads of key/value, mask, causal alignment, tangents present among q, k, v, mask)
CACHE_TILE_CASES = {
    "plain": (9, 7, 4, None, None, "qkv"),
    "gqa": (9, 7, 2, None, None, "qkv"),
    "q only": (9, 7, 4, None, None, "q"),
    "k only": (9, 7, 4, None, None, "k"),
    "q and v": (9, 7, 4, None, None, "qv"),
    "additive mask with tangent": (9, 7, 4, "additive", None, "qkvm"),
    "mask tangent only": (9, 7, 4, "additive", None, "m"),
    "mask broadcast over rows": (9, 7, 4, "row broadcast", None, "qkv"),
    "causal top left": (9, 9, 4, None, "top_left", "qkv"),
    "causal top left L > S": (9, 6, 4, None, "top_left", "qkv"),
    "causal bottom right L < S": (6, 9, 4, None, "bottom_right", "qkv"),
    "causal, v only (no fused shortcut)": (6, 9, 4, None, "bottom_right", "v"),
    "causal, no v tangent": (9, 9, 4, None, "top_left", "qk"),
    "causal and mask": (9, 9, 2, "additive", "top_left", "qkvm"),
}


def _cache_tile_problem(case):
    L, S, kv_heads, mask_kind, alignment, present = CACHE_TILE_CASES[case]
    shapes = {"q": (2, 4, L, 5), "k": (2, kv_heads, S, 5), "v": (2, kv_heads, S, 5),
              "m": {"additive": (1, 4, L, S), "row broadcast": (2, 1, 1, S), None: None}[mask_kind]}
    primals = {n: None if s is None else randn(*s, seed=i) for i, (n, s) in enumerate(shapes.items())}
    tangents = {n: randn(*shapes[n], seed=10 + i) if n in present else None for i, n in enumerate(shapes)}
    causal_offset = None if alignment is None else (S - L if alignment == "bottom_right" else 0)
    return primals, tangents, alignment, causal_offset


@pytest.mark.parametrize("case", CACHE_TILE_CASES, ids=list(CACHE_TILE_CASES))
@pytest.mark.parametrize("tiling", ["two rows a tile", "two heads a tile"])
@pytest.mark.parametrize("threads", [1, 2])
def test_cache_tiles_match_reference_and_blockwise_rule(monkeypatch, tile_loop, case, tiling, threads):
    # the values-only tiles (C++ tile loop, or Python with worker threads at 2 threads)
    # against reverse-free torch.func.jvp of attention written out in plain ops, and
    # against the blockwise rule. L = 9: the last of the two-row tiles has one row.
    import torch_fwdad.formulas.attention as attention

    primals, tangents, alignment, causal_offset = _cache_tile_problem(case)
    q, k, v, m = primals.values()
    L, S = q.size(-2), k.size(-2)
    scale = 0.4
    out, lse = _reference_attention(q, k, v, m, scale, causal_offset)
    given = [n for n, p in primals.items() if p is not None]  # no mask: m stays None

    def reference(*inputs):
        return _reference_attention(*{**primals, **dict(zip(given, inputs))}.values(), scale, causal_offset)

    expected = torch.func.jvp(reference, tuple(primals[n] for n in given),
                              tuple(torch.zeros_like(primals[n]) if tangents[n] is None else tangents[n]
                                    for n in given))[1]

    def rule():
        return attention.attention_jvp(tuple(primals.values()), tuple(tangents.values()), out, lse, scale=scale,
                                       is_causal=alignment is not None,
                                       alignment=alignment or attention.TOP_LEFT)

    elements = 2 * S if tiling == "two rows a tile" else 2 * L * S
    monkeypatch.setattr(attention, "CACHE_TILE_ELEMENTS", elements)
    monkeypatch.setattr(attention, "CPP_TILE_ELEMENTS", elements)
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", 2 * S)  # several blockwise tiles too
    reached = _count_values_only_tiles(monkeypatch, tile_loop)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        in_cache = rule()
        monkeypatch.setattr(attention, "USE_CACHE_TILES", False)
        blockwise = rule()
    finally:
        torch.set_num_threads(before)
    assert len(reached) == 1, "values-only tiles not reached"
    if tile_loop == "python":
        assert (reached[0]["run_tiles"] is not None) == (threads > 1), "worker threads not used as expected"
    torch.testing.assert_close(in_cache[0], expected[0])
    if "q" in CACHE_TILE_CASES[case][-1] or "k" in CACHE_TILE_CASES[case][-1] or "m" in CACHE_TILE_CASES[case][-1]:
        torch.testing.assert_close(in_cache[1], expected[1])
    else:
        assert in_cache[1] is None and blockwise[1] is None
    for got, other in zip(in_cache, blockwise):
        torch.testing.assert_close(got, other)


def _causal_attention(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _jvp_counting_cache_tiles(monkeypatch, path, threads, primals, tangents, then=lambda got: None):
    """torch.func.jvp of causal attention with 3 query rows a values-only tile, on `threads`
    threads: (its result, whether the values-only tiles of `path` ran, then(result))."""
    import torch_fwdad.formulas.attention as attention

    monkeypatch.setattr(attention, "CACHE_TILE_ELEMENTS", 3 * 8)  # 3 query rows a tile
    monkeypatch.setattr(attention, "CPP_TILE_ELEMENTS", 3 * 8)
    reached = _count_values_only_tiles(monkeypatch, path)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = torch.func.jvp(_causal_attention, primals, tangents)
        return got, bool(reached), then(got)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_cache_tiles_leave_reverse_mode_beneath_torch_func_alone(monkeypatch, tile_loop, threads):
    # a model whose parameters require grad, under torch.func.jvp: the wrapped tensors the
    # rule sees do not require grad, the plain ones under them do. The in-place tiles
    # (out= writes) must not be taken, and the JVP must stay differentiable in reverse.
    primals = tuple(randn(2, 3, 8, 4, seed=i).requires_grad_() for i in range(3))
    tangents = tuple(randn(2, 3, 8, 4, seed=10 + i) for i in range(3))
    tangent_grads = lambda got: torch.autograd.grad(got[1].square().sum(), primals)  # noqa: E731
    got, reached, grads = _jvp_counting_cache_tiles(monkeypatch, tile_loop, threads, primals, tangents, tangent_grads)
    assert not reached, "in-place tiles taken beneath reverse mode"
    expected = math_jvp(_causal_attention, primals, tangents)
    assert_tangents_close(got, expected)
    for got_grad, expected_grad in zip(grads, tangent_grads(expected)):
        torch.testing.assert_close(got_grad, expected_grad)


@pytest.mark.parametrize("threads", [1, 2])
def test_cache_tiles_under_torch_func_jvp(monkeypatch, tile_loop, threads):
    # torch.func.jvp hands the rule wrapped tensors; the values-only tiles compute on the
    # plain values under them: in C++, or in Python on this thread (1 thread) or on worker
    # threads (2)
    primals = tuple(randn(2, 3, 8, 4, seed=i) for i in range(3))
    tangents = tuple(randn(2, 3, 8, 4, seed=10 + i) for i in range(3))
    got, reached, _ = _jvp_counting_cache_tiles(monkeypatch, tile_loop, threads, primals, tangents)
    assert reached, "in-place tiles not reached"
    assert_tangents_close(got, math_jvp(_causal_attention, primals, tangents))


def test_tile_loop_info_names_the_path_and_its_switches(monkeypatch):
    # info() says which loop runs and why; use_python switches at run time; the
    # environment variable keeps the C++ loop from loading at all
    from torch_fwdad.formulas import attention_tiles

    tiles = attention_tiles.extension
    monkeypatch.setattr(tiles, "active", tiles.active)  # restored after the test
    built = tiles.info()["built"]
    assert tiles.info()["path"] == ("c++" if built else "python")
    tiles.use_python(True)
    assert not tiles.active and tiles.info()["path"] == "python"
    if built:
        assert tiles.info()["reason"] == "the Python path was chosen at run time"
        tiles.use_python(False)
        assert tiles.active and tiles.info()["path"] == "c++"
    else:
        with pytest.raises(RuntimeError, match="not available"):
            tiles.use_python(False)
    monkeypatch.setenv(attention_tiles.ENVIRONMENT_VARIABLE, "python")
    assert tiles.load() == (None, f"{attention_tiles.ENVIRONMENT_VARIABLE}=python")
