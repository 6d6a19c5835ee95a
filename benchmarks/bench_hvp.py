"""Hessian-vector product through fused attention: forward_ad over autograd.grad against torch.func.jvp(grad).

Both spellings run the same CPU flash kernels and torch_fwdad's rules for them (the
forward one and the backward one); forward_ad builds PyTorch's own backward node on dual
inputs instead of torch.func's wrapped tensors. Prints the medians
(torch.utils.benchmark, measured side by side in one process) and their ratio.
"""

from __future__ import annotations

import argparse

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.utils import benchmark

import torch_fwdad  # noqa: F401  (installs the rules)


def loss(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).pow(2).sum()


def hvp_forward_ad(primals, vectors):
    with fwAD.dual_level():
        duals = [fwAD.make_dual(p.detach().requires_grad_(), t) for p, t in zip(primals, vectors)]
        grads = torch.autograd.grad(loss(*duals), duals, create_graph=True)
        return [fwAD.unpack_dual(g).tangent for g in grads]


def hvp_func(primals, vectors):
    return torch.func.jvp(torch.func.grad(loss, argnums=(0, 1, 2)), tuple(primals), tuple(vectors))[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=[2, 8, 1024, 64], metavar=("B", "H", "L", "E"))
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timing (torch.utils.benchmark)")
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(0)
    primals = [torch.randn(*args.shape, generator=generator) for _ in range(3)]
    vectors = [torch.randn(*args.shape, generator=generator) for _ in range(3)]
    expected = hvp_func(primals, vectors)
    for got, want in zip(hvp_forward_ad(primals, vectors), expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    timings = {}
    for name, fn in (("forward_ad", hvp_forward_ad), ("torch.func", hvp_func)):
        timer = benchmark.Timer("fn(p, v)", globals=dict(fn=fn, p=primals, v=vectors))
        timings[name] = timer.blocked_autorange(min_run_time=args.min_run_time).median
    shape = "x".join(map(str, args.shape))
    print(f"HVP through SDPA {shape} float32, {torch.get_num_threads()} threads:")
    for name, seconds in timings.items():
        print(f"  {name:10s} {seconds * 1e3:9.1f} ms")
    print(f"  ratio forward_ad / torch.func: {timings['forward_ad'] / timings['torch.func']:.2f}")


if __name__ == "__main__":
    main()
