"""custom_jvp: forward mode from the rule, reverse mode from its transpose, vs finite differences."""

import functools
import pathlib
import re

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from expecttest import assert_expected_inline
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vmap
from torch.utils import _pytree as pytree

from torch_fwdad.custom import JvpCheckError, check_jvp, custom_jvp

EPS = 1e-6
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "custom_rules.md"


def central_difference(f, args, tangents):
    def shifted(sign):
        return f(*pytree.tree_map(lambda a, t: a + sign * EPS * t, tuple(args), tuple(tangents)))
    return pytree.tree_map(lambda p, m: (p - m) / (2 * EPS), shifted(1), shifted(-1))


def numerical_gradient(f, x):
    return torch.stack([central_difference(f, (x,), (e,)) for e in torch.eye(x.numel(), dtype=x.dtype)]).reshape(x.shape)


def numerical_hessian(f, x):
    step = 1e-4
    return torch.stack([(numerical_gradient(f, x + step * e) - numerical_gradient(f, x - step * e)) / (2 * step)
                        for e in torch.eye(x.numel(), dtype=x.dtype)], dim=-1)


# f(x, y) = sin(x) * y. The body runs inside autograd.Function.forward (grad off), so only
# the rule differentiates it; it stays in torch ops because vmap runs the body batched.
@custom_jvp
def sin_times(x, y):
    return torch.sin(x) * y


@sin_times.defjvp
def sin_times_jvp(primals, tangents):
    (x, y), (x_t, y_t) = primals, tangents
    return torch.sin(x) * y, torch.cos(x) * y * x_t + torch.sin(x) * y_t


def scalar(x, y):
    return sin_times(x, y).sum()


@pytest.fixture
def xy():
    return torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)


def test_forward_mode_matches_finite_differences(xy):
    tangents = (torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64))
    expected = central_difference(sin_times, xy, tangents)
    torch.testing.assert_close(jvp(sin_times, xy, tangents)[1], expected)
    with fwAD.dual_level():
        out = sin_times(*[fwAD.make_dual(a, t) for a, t in zip(xy, tangents)])
        torch.testing.assert_close(fwAD.unpack_dual(out).tangent, expected)


def test_missing_tangent_arrives_as_zeros(xy):
    x, y = xy
    seen = []

    @custom_jvp
    def f(x, y):
        return x * y

    @f.defjvp
    def f_jvp(primals, tangents):
        seen.append(tangents)
        (x, y), (x_t, y_t) = primals, tangents
        return x * y, x_t * y + x * y_t

    t = torch.randn_like(x)
    torch.testing.assert_close(jvp(lambda a: f(a, y), (x,), (t,))[1], central_difference(lambda a: f(a, y), (x,), (t,)))
    assert torch.equal(seen[-1][1], torch.zeros_like(y))


def test_reverse_mode_is_the_transpose_of_the_rule(xy):
    x, y = xy
    gx, gy = grad(scalar, argnums=(0, 1))(x, y)
    torch.testing.assert_close(gx, numerical_gradient(lambda a: scalar(a, y), x))
    torch.testing.assert_close(gy, numerical_gradient(lambda b: scalar(x, b), y))
    leaf = x.clone().requires_grad_()
    scalar(leaf, y).backward()
    torch.testing.assert_close(leaf.grad, gx)
    jacobian = torch.stack([central_difference(lambda a: sin_times(a, y), (x,), (e,)) for e in torch.eye(4, dtype=x.dtype)], -1)
    torch.testing.assert_close(jacrev(sin_times)(x, y), jacobian)
    torch.testing.assert_close(jacfwd(sin_times)(x, y), jacobian)


def test_second_order(xy):
    x, y = xy
    expected = numerical_hessian(lambda a: scalar(a, y), x)
    close = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hessian(scalar)(x, y), expected, **close)
    torch.testing.assert_close(jacrev(jacrev(scalar))(x, y), expected, **close)
    torch.testing.assert_close(jacrev(jacfwd(scalar))(x, y), expected, **close)
    leaf = x.clone().requires_grad_()
    (first,) = torch.autograd.grad(scalar(leaf, y), leaf, create_graph=True)
    first.sum().backward()
    torch.testing.assert_close(leaf.grad, expected.sum(0), **close)


def test_forward_over_forward_is_refused_not_zero(xy):
    x, y = xy
    with pytest.raises(NotImplementedError) as error:
        jacfwd(jacfwd(scalar))(x, y)
    assert_expected_inline(str(error.value), """torch_fwdad: forward-over-forward through custom_jvp function sin_times is not supported (torch.autograd.Function cannot nest jvp levels); use hessian/jacfwd(jacrev(...)) or jacrev(jacfwd(...)) instead""")


def test_vmap_and_vmap_of_transforms(xy):
    x, y = xy
    xs, ys = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(vmap(sin_times)(xs, ys), torch.sin(xs) * ys)
    per_sample = torch.stack([grad(scalar)(a, b) for a, b in zip(xs, ys)])
    torch.testing.assert_close(vmap(grad(scalar))(xs, ys), per_sample)
    torch.testing.assert_close(per_sample, torch.stack([numerical_gradient(lambda a: scalar(a, b), a) for a, b in zip(xs, ys)]))
    basis = torch.eye(4, dtype=torch.float64)
    torch.testing.assert_close(vmap(lambda t: jvp(lambda a: sin_times(a, y), (x,), (t,))[1])(basis), jacfwd(sin_times)(x, y).T)


# pytree inputs and outputs, a non-differentiable argument and keyword configuration
@functools.partial(custom_jvp, nondiff_argnums=(0,))
def polar(power, point, *, scale=1.0):
    r = scale * torch.hypot(point["x"], point["y"]) ** power
    return {"r": r, "xy": (point["x"] * r, point["y"] * r)}


@polar.defjvp
def polar_jvp(power, primals, tangents, *, scale=1.0):
    (point,), (point_t,) = primals, tangents
    x, y, x_t, y_t = point["x"], point["y"], point_t["x"], point_t["y"]
    rho = torch.hypot(x, y)
    r = scale * rho**power
    r_t = scale * power * rho ** (power - 2) * (x * x_t + y * y_t)
    return polar(power, point, scale=scale), {"r": r_t, "xy": (x_t * r + x * r_t, y_t * r + y * r_t)}



def test_pytrees_nondiff_arguments_and_keyword_config():
    point = {"x": torch.randn(3, dtype=torch.float64), "y": torch.randn(3, dtype=torch.float64)}
    point_t = {"x": torch.randn(3, dtype=torch.float64), "y": torch.randn(3, dtype=torch.float64)}
    f = lambda p: polar(1.5, p, scale=2.0)  # noqa: E731
    out, out_t = jvp(f, (point,), (point_t,))
    expected = central_difference(f, (point,), (point_t,))
    torch.testing.assert_close(out_t, expected)
    total = lambda p: f(p)["r"].sum() + sum(v.sum() for v in f(p)["xy"])  # noqa: E731
    g = grad(total)(point)
    flat = lambda v: total({"x": v[:3], "y": v[3:]})  # noqa: E731
    torch.testing.assert_close(torch.cat([g["x"], g["y"]]), numerical_gradient(flat, torch.cat([point["x"], point["y"]])))
    check_jvp(polar, (1.5, point), kwargs={"scale": 2.0})


def test_torch_compile_of_calling_code_runs_forward_and_backward(xy):
    # Dynamo does not trace an autograd.Function with a jvp: the call is a graph break
    x, y = xy
    compiled = torch.compile(lambda a, b: sin_times(a, b) * 2 + 1, backend="eager")
    torch.testing.assert_close(compiled(x, y), torch.sin(x) * y * 2 + 1)
    leaf = x.clone().requires_grad_()
    compiled(leaf, y).sum().backward()
    torch.testing.assert_close(leaf.grad, 2 * numerical_gradient(lambda a: scalar(a, y), x))


def test_check_jvp_reports_a_nonlinear_rule_and_a_wrong_one():
    @custom_jvp
    def square(x):
        return x * x

    @square.defjvp
    def square_jvp(primals, tangents):
        (x,), (x_t,) = primals, tangents
        return x * x, 2 * x * x_t * x_t  # not linear in x_t

    x = torch.linspace(-1, 1, 5)
    with pytest.raises(JvpCheckError) as error:
        check_jvp(square, (x,))
    assert_expected_inline(str(error.value), """torch_fwdad.check_jvp: the rule of custom_jvp function square fails for output 'result': it is not linear in the tangents: rule(2·t1 - 3·t2) differs from 2·rule(t1) - 3·rule(t2). A JVP rule must be linear in the tangents, or the reverse mode derived from it is wrong (max abs difference 108, atol 1e-05, rtol 0.0001)""")

    square.defjvp(lambda primals, tangents: (primals[0] ** 2, primals[0] * tangents[0]))  # factor 2 missing
    with pytest.raises(JvpCheckError) as error:
        check_jvp(square, (x,))
    assert_expected_inline(str(error.value), """torch_fwdad.check_jvp: the rule of custom_jvp function square fails for output 'result': it disagrees with central finite differences (max abs difference 1.54, atol 1e-05, rtol 0.0001)""")

    square.defjvp(lambda primals, tangents: (primals[0], 2 * primals[0] * tangents[0]))  # wrong primal_out
    with pytest.raises(JvpCheckError) as error:
        check_jvp(square, (x,))
    assert "its primal_out differs from the function's output" in str(error.value)


def _rule_error(rule, outputs=1):
    @custom_jvp
    def f(x):
        return x.sin() if outputs == 1 else (x.sin(), x.cos())

    f.defjvp(rule)
    x = torch.randn(3, dtype=torch.float64)
    with pytest.raises(Exception) as error:
        jvp(f, (x,), (torch.ones_like(x),))
    return f"{type(error.value).__name__}: {error.value}"


def test_rule_errors_are_pinned():
    cos_t = lambda p, t: p[0].cos() * t[0]  # noqa: E731
    assert_expected_inline(_rule_error(lambda p, t: cos_t(p, t), outputs=2), """RuntimeError: torch_fwdad: the jvp rule of custom_jvp function f must return a pair (primal_out, tangent_out), got a Tensor""")
    assert_expected_inline(_rule_error(lambda p, t: (None, cos_t(p, t)), outputs=2), """RuntimeError: torch_fwdad: the jvp rule of custom_jvp function f returned tangents structured as *; they must be structured like the outputs, (*, *)""")
    assert_expected_inline(_rule_error(lambda p, t: (None, cos_t(p, t)[:2])), """RuntimeError: torch_fwdad: the jvp rule of custom_jvp function f returned a tangent of shape (2,), dtype torch.float64, device cpu for output 'result', which has shape (3,), dtype torch.float64, device cpu; a tangent must match its output""")
    assert_expected_inline(_rule_error(lambda p, t: (None, cos_t(p, t).float())), """RuntimeError: torch_fwdad: the jvp rule of custom_jvp function f returned a tangent of shape (3,), dtype torch.float32, device cpu for output 'result', which has shape (3,), dtype torch.float64, device cpu; a tangent must match its output""")
    assert_expected_inline(_rule_error(lambda p, t: (None, (cos_t(p, t), 0.0)), outputs=2), """RuntimeError: torch_fwdad: the jvp rule of custom_jvp function f returned a float for output '[1]'; expected a Tensor or None""")

    @custom_jvp
    def no_rule(x):
        return x

    with pytest.raises(RuntimeError) as error:
        no_rule(torch.ones(1))
    assert_expected_inline(str(error.value), """torch_fwdad: custom_jvp function no_rule has no rule; define one with @no_rule.defjvp""")


def test_docs_examples_run():
    """Every ```python block of docs/custom_rules.md, in order, in one namespace (they assert)."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    try:
        for index, block in enumerate(blocks):
            exec(compile(block, f"{DOCS.name}[python block {index}]", "exec"), namespace)
            if index == 0:  # the fused GELU block's hessian, against finite differences of the op
                gelu_x = namespace["x"]
                torch.testing.assert_close(namespace["hessian"], numerical_hessian(lambda v: namespace["fused_gelu"](v).sum(), gelu_x), atol=1e-5, rtol=1e-5)
    finally:
        if "fused_gelu" in namespace:
            import torch_fwdad
            torch_fwdad.unregister_jvp(namespace["fused_gelu"])
