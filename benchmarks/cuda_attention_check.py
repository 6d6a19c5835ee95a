"""CUDA fused attention under forward-mode AD: tangents vs the MATH reference, time and memory.

For each CUDA SDPA backend (flash, memory-efficient, cuDNN) and dtype (float32,
bfloat16), where the backend accepts the case: torch.func.jvp through
F.scaled_dot_product_attention with that backend forced, compared with the MATH backend's
jvp in float64; then time and peak memory of the fused jvp relative to the fused primal
and to the MATH jvp. Skips cleanly (exit 0) without CUDA. Runs in well under 5 minutes.
Usage: python benchmarks/cuda_attention_check.py
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

BACKENDS = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION")
CASES = {  # name: (B, H, Hk, L, S, E, options)
    "causal": (2, 8, 8, 1024, 1024, 64, {"is_causal": True}),
    "L!=S": (2, 8, 8, 512, 1024, 64, {}),
    "gqa": (2, 8, 2, 1024, 1024, 64, {"enable_gqa": True}),
}
TOLERANCE = {torch.float32: 2e-3, torch.bfloat16: 5e-2}  # relative to the tangent's scale


def inputs(B, H, Hk, L, S, E, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    shapes = [(B, H, L, E), (B, Hk, S, E), (B, Hk, S, E)]
    primals = tuple(torch.randn(s, device="cuda", dtype=dtype, generator=g) for s in shapes)
    tangents = tuple(torch.randn(s, device="cuda", dtype=dtype, generator=g) for s in shapes)
    return primals, tangents


def timed(fn, repeats=5):
    fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats, (torch.cuda.max_memory_allocated() - base) / 2**20


def check(backend_name, dtype, case):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, H, Hk, L, S, E, options = CASES[case]
    primals, tangents = inputs(B, H, Hk, L, S, E, dtype)
    sdpa = (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **options))
    backend = getattr(SDPBackend, backend_name)
    try:
        with sdpa_kernel(backend):
            _, tangent = torch.func.jvp(sdpa, primals, tangents)
    except RuntimeError as error:
        first = str(error).splitlines()[0][:90]
        return f"{backend_name:20} {str(dtype)[6:]:9} {case:7} skipped: {first}"
    with sdpa_kernel(SDPBackend.MATH):
        _, reference = torch.func.jvp(sdpa, tuple(p.double() for p in primals), tuple(t.double() for t in tangents))
    error = ((tangent.double() - reference).abs().max() / reference.abs().max()).item()
    with sdpa_kernel(backend):
        primal_time, primal_mb = timed(lambda: sdpa(*primals))
        jvp_time, jvp_mb = timed(lambda: torch.func.jvp(sdpa, primals, tangents))
    with sdpa_kernel(SDPBackend.MATH):
        math_time, math_mb = timed(lambda: torch.func.jvp(sdpa, primals, tangents))
    verdict = "ok" if error <= TOLERANCE[dtype] else "MISMATCH"
    return (f"{backend_name:20} {str(dtype)[6:]:9} {case:7} rel.err {error:.1e} {verdict:8} "
            f"jvp/primal {jvp_time / primal_time:5.2f}x  MATH/jvp {math_time / jvp_time:5.2f}x  "
            f"peak MB jvp {jvp_mb:7.0f} MATH {math_mb:7.0f}")


def main() -> int:
    if not torch.cuda.is_available():
        print("cuda_attention_check: no CUDA device, nothing to check (skipped)")
        return 0
    import torch_fwdad  # noqa: F401  (installs the rules)

    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    failures = 0
    for backend_name in BACKENDS:
        for dtype in (torch.float32, torch.bfloat16):
            for case in CASES:
                line = check(backend_name, dtype, case)
                failures += "MISMATCH" in line
                print(line, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
