"""Forward mode inside torch.compile: every transform, one rule per family, each backend.

A compiled program enters its dual level in C++ and never sets the Python global
`forward_ad._current_level`; these tests pin that the engine sees the level anyway
(engine/kernel.py `tangent_level`) and that results match eager. The full cross product
(inductor compiles take tens of seconds on a small machine) is marked slow; CI runs every
family under the eager and aot_eager backends and cdist under inductor.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import torch_fwdad

DOUBLE = torch.float64


def _generator():
    return torch.Generator().manual_seed(0)


def _cdist_case():
    g = _generator()
    y = torch.randn(5, 3, dtype=DOUBLE, generator=g)
    return (lambda a: torch.cdist(a, y)), torch.randn(4, 3, dtype=DOUBLE, generator=g)


def _attention_case():
    # Float64 on CPU runs the flash kernel (`_scaled_dot_product_flash_attention_for_cpu`).
    g = _generator()
    k, v = (torch.randn(1, 2, 6, 4, dtype=DOUBLE, generator=g) for _ in range(2))

    def attention(q):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v)

    return attention, torch.randn(1, 2, 5, 4, dtype=DOUBLE, generator=g)


def _grid_sample_case():
    g = _generator()
    image = torch.randn(1, 2, 4, 5, dtype=DOUBLE, generator=g)
    return (lambda grid: F.grid_sample(image, grid, align_corners=False)), torch.rand(1, 3, 3, 2, dtype=DOUBLE, generator=g) * 1.6 - 0.8


def _embedding_bag_case():
    indices, offsets = torch.tensor([0, 2, 1, 3, 2]), torch.tensor([0, 2])
    return (lambda weight: F.embedding_bag(indices, weight, offsets, mode="mean")), torch.randn(4, 3, dtype=DOUBLE, generator=_generator())


def _loss_case():
    target = torch.tensor([1, 0, 2])
    return (lambda x: F.multi_margin_loss(x, target, reduction="none")), torch.randn(3, 4, dtype=DOUBLE, generator=_generator())


@torch.library.custom_op("fwdad_compile_test::scaled_sin", mutates_args=())
def scaled_sin(x: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.sin(x) * scale


@scaled_sin.register_fake
def _(x, scale):
    return torch.empty_like(x)


def _scaled_sin_jvp(primals, tangents, output):
    (x, scale), (tx, _) = primals, tangents
    return torch.cos(x) * tx * scale


def _custom_op_case():
    return (lambda x: scaled_sin(x, 1.5)), torch.randn(3, 4, dtype=DOUBLE, generator=_generator())


FAMILIES = {
    "cdist": _cdist_case,
    "attention": _attention_case,
    "grid_sample": _grid_sample_case,
    "embedding_bag": _embedding_bag_case,
    "multi_margin_loss": _loss_case,
    "custom_op": _custom_op_case,
}


@pytest.fixture(scope="module", autouse=True)
def custom_op_rule():
    torch_fwdad.register_jvp(scaled_sin, _scaled_sin_jvp, transpose=True)  # reverse mode for hessian
    yield
    torch_fwdad.unregister_jvp(scaled_sin)


def _tangent_of(f, x):
    return torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(1))


def _func_jvp(f, x, t):
    return torch.func.jvp(f, (x,), (t,))[1]


def _dual_level(f, x, t):
    with fwAD.dual_level():
        return fwAD.unpack_dual(f(fwAD.make_dual(x, t))).tangent


def _jacfwd(f, x, t):
    return torch.func.jacfwd(f)(x)


def _hessian(f, x, t):
    # Second order of a scalar: forward-over-reverse through the op's backward.
    return torch.func.hessian(lambda a: (f(a) ** 2).sum())(x)


TRANSFORMS = {"func.jvp": _func_jvp, "dual_level": _dual_level, "jacfwd": _jacfwd, "hessian": _hessian}
BACKENDS = ("eager", "aot_eager", "inductor")


def _compiled_matches_eager(family: str, transform: str, backend: str, fullgraph: bool) -> None:
    torch._dynamo.reset()
    f, x = FAMILIES[family]()
    t = _tangent_of(f, x)
    run = TRANSFORMS[transform]
    expected = run(f, x, t)
    compiled = torch.compile(lambda a: run(f, a, t), backend=backend, fullgraph=fullgraph)
    torch.testing.assert_close(compiled(x), expected)
    assert expected.abs().sum() > 0, "a zero tangent would match a dropped one"


# CI: every family through func.jvp and a dual level under eager and aot_eager (fullgraph),
# every transform on cdist and the custom op, and inductor on cdist.
FAST_CASES = sorted(
    {(fam, tr, be, True) for fam in FAMILIES for tr in ("func.jvp", "dual_level") for be in ("eager", "aot_eager")}
    | {(fam, tr, "aot_eager", fg) for fam in ("cdist", "custom_op") for tr in TRANSFORMS for fg in (True, False)}
    | {("cdist", tr, "inductor", True) for tr in ("func.jvp", "dual_level")}
)
# Not a compile question: eager hessian through multi_margin_loss fails too (no forward rule
# for multi_margin_loss_backward, which forward-over-reverse needs).
NOT_IN_EAGER = {("multi_margin_loss", "hessian")}
SLOW_CASES = [case for case in itertools.product(FAMILIES, TRANSFORMS, BACKENDS, (True, False))
              if case not in FAST_CASES and case[:2] not in NOT_IN_EAGER]


@pytest.mark.parametrize("family,transform,backend,fullgraph", FAST_CASES)
def test_compiled_forward_mode_matches_eager(family, transform, backend, fullgraph):
    _compiled_matches_eager(family, transform, backend, fullgraph)


@pytest.mark.slow
@pytest.mark.parametrize("family,transform,backend,fullgraph", SLOW_CASES)
def test_compiled_forward_mode_matches_eager_full(family, transform, backend, fullgraph):
    _compiled_matches_eager(family, transform, backend, fullgraph)


def _forward_ad_works() -> None:
    x = torch.randn(3, dtype=DOUBLE)
    torch.testing.assert_close(torch.func.jvp(torch.sin, (x,), (torch.ones(3, dtype=DOUBLE),))[1], torch.cos(x))
    with fwAD.dual_level():
        assert fwAD.unpack_dual(torch.sin(fwAD.make_dual(x, torch.ones(3, dtype=DOUBLE)))).tangent is not None


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_forward_ad_works_after_a_failing_rule_inside_compile(backend):
    """A rule that raises inside a compiled dual level must not leave that level open."""
    torch._dynamo.reset()
    f, x = _custom_op_case()

    def broken(primals, tangents, output):
        raise ValueError("deliberately broken rule")

    torch_fwdad.register_jvp(scaled_sin, broken, override=True)
    try:
        for transform in (_func_jvp, _dual_level):
            with pytest.raises(Exception, match="deliberately broken rule"):
                torch.compile(lambda a: transform(f, a, torch.ones_like(a)), backend=backend, fullgraph=True)(x)
            _forward_ad_works()
    finally:
        torch_fwdad.register_jvp(scaled_sin, _scaled_sin_jvp, override=True, transpose=True)


def test_forward_ad_works_after_a_compile_error():
    """Dynamo refusing the program (fullgraph with a graph break) inside a dual level."""
    torch._dynamo.reset()
    f, x = _cdist_case()

    def with_graph_break(a):
        with fwAD.dual_level():
            out = f(fwAD.make_dual(a, torch.ones_like(a)))
            torch._dynamo.graph_break()
            return fwAD.unpack_dual(out).tangent

    with pytest.raises(Exception):
        torch.compile(with_graph_break, backend="eager", fullgraph=True)(x)
    _forward_ad_works()
