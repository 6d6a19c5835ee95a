"""register_jvp on torch.library custom ops: forward mode, derived reverse mode, errors.

The ops' bodies go through NumPy, so PyTorch cannot differentiate them; every derivative
is compared with central finite differences of the op itself (float64).
"""

import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as fwAD
from expecttest import assert_expected_inline
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vmap

import torch_fwdad
from torch_fwdad.custom import JvpCheckError, check_jvp


def _numpy_op(name, fn):
    """A custom op `fwdad_custom_test::name` computing fn on NumPy arrays."""
    @torch.library.custom_op(f"fwdad_custom_test::{name}", mutates_args=())
    def op(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(fn(x.detach().numpy(), scale)))

    op.register_fake(lambda x, scale=1.0: torch.empty_like(x))
    return op


# f(x) = scale * x**3, so f' = 3 scale x**2, f'' = 6 scale x
cube = _numpy_op("cube", lambda a, s: s * a**3)


def cube_jvp(primals, tangents, output):
    (x, scale), (x_t, scale_t) = primals, tangents
    assert scale_t is None  # non-tensor arguments never carry a tangent
    return 3 * scale * x * x * x_t


# sin with PyTorch's reverse mode supplied by register_autograd (reverse stays untouched)
np_sin = _numpy_op("sin", lambda a, s: s * np.sin(a))
np_sin.register_autograd(
    lambda ctx, g: (g * ctx.scale * torch.cos(ctx.x), None),
    setup_context=lambda ctx, inputs, output: setattr(ctx, "x", inputs[0]) or setattr(ctx, "scale", inputs[1]),
)

EPS = 1e-6


def central_difference(f, x, direction):
    return (f(x + EPS * direction) - f(x - EPS * direction)) / (2 * EPS)


def numerical_jacobian(f, x):
    return torch.stack([central_difference(f, x, e) for e in torch.eye(x.numel(), dtype=x.dtype)], dim=-1)


def numerical_hessian(f, x):
    """Central differences of a scalar function's numerical gradient."""
    def gradient(y):
        return torch.stack([central_difference(f, y, e) for e in torch.eye(y.numel(), dtype=y.dtype)])
    step = 1e-4
    return torch.stack([(gradient(x + step * e) - gradient(x - step * e)) / (2 * step)
                        for e in torch.eye(x.numel(), dtype=x.dtype)], dim=-1)


@pytest.fixture
def registered_cube():
    torch_fwdad.register_jvp(cube, cube_jvp, transpose=True)
    yield
    torch_fwdad.unregister_jvp(cube)


@pytest.fixture
def x():
    return torch.randn(4, dtype=torch.float64)


def scaled_cube(x):
    return cube(x, 2.0)


def test_without_a_rule_pytorch_gives_a_silent_zero_and_with_one_the_right_tangent(x):
    t = torch.randn_like(x)
    assert (jvp(scaled_cube, (x,), (t,))[1] == 0).all()
    with fwAD.dual_level():
        assert fwAD.unpack_dual(scaled_cube(fwAD.make_dual(x, t))).tangent is None

    torch_fwdad.register_jvp(cube, cube_jvp)
    try:
        expected = central_difference(scaled_cube, x, t)
        torch.testing.assert_close(jvp(scaled_cube, (x,), (t,))[1], expected)
        with fwAD.dual_level():
            torch.testing.assert_close(fwAD.unpack_dual(scaled_cube(fwAD.make_dual(x, t))).tangent, expected)
    finally:
        torch_fwdad.unregister_jvp(cube)


def test_forward_transforms_match_finite_differences(registered_cube, x):
    jacobian = numerical_jacobian(scaled_cube, x)
    torch.testing.assert_close(jacfwd(scaled_cube)(x), jacobian)
    basis = torch.eye(4, dtype=x.dtype)
    torch.testing.assert_close(vmap(lambda t: jvp(scaled_cube, (x,), (t,))[1])(basis), jacobian.T)


def test_forward_over_forward_differentiates_the_rule(registered_cube, x):
    torch.testing.assert_close(jacfwd(jacfwd(lambda y: scaled_cube(y).sum()))(x),
                               numerical_hessian(lambda y: scaled_cube(y).sum(), x), atol=1e-5, rtol=1e-5)


def test_transpose_gives_reverse_mode_and_second_order(registered_cube, x):
    jacobian = numerical_jacobian(scaled_cube, x)
    torch.testing.assert_close(jacrev(scaled_cube)(x), jacobian)
    torch.testing.assert_close(grad(lambda y: scaled_cube(y).sum())(x), jacobian.sum(0))
    expected_hessian = numerical_hessian(lambda y: scaled_cube(y).sum(), x)
    torch.testing.assert_close(hessian(lambda y: scaled_cube(y).sum())(x), expected_hessian, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(jacrev(jacrev(lambda y: scaled_cube(y).sum()))(x), expected_hessian, atol=1e-5, rtol=1e-5)
    leaf = x.clone().requires_grad_()
    (first,) = torch.autograd.grad(scaled_cube(leaf).sum(), leaf, create_graph=True)
    first.sum().backward()
    torch.testing.assert_close(leaf.grad, expected_hessian.sum(0), atol=1e-5, rtol=1e-5)


def test_unregister_removes_the_derived_reverse_mode_too(x):
    torch_fwdad.register_jvp(cube, cube_jvp, transpose=True)
    torch_fwdad.unregister_jvp(cube)
    with pytest.raises(RuntimeError, match="no autograd formula was registered"):
        scaled_cube(x.clone().requires_grad_()).sum().backward()
    assert (jvp(scaled_cube, (x,), (torch.ones_like(x),))[1] == 0).all()


def test_register_autograd_op_keeps_its_backward_and_gains_forward_and_second_order(x):
    torch_fwdad.register_jvp("fwdad_custom_test::sin", lambda p, t, out: p[1] * torch.cos(p[0]) * t[0])
    try:
        f = lambda y: np_sin(y, 3.0)  # noqa: E731
        torch.testing.assert_close(jacfwd(f)(x), numerical_jacobian(f, x))
        leaf = x.clone().requires_grad_()
        f(leaf).sum().backward()  # the user's backward
        torch.testing.assert_close(leaf.grad, 3.0 * torch.cos(x))
        # second order: reverse over forward (PyTorch's register_autograd kernel refuses torch.func.grad)
        v = torch.randn_like(x)
        leaf = x.clone().requires_grad_()
        with fwAD.dual_level():
            tangent = fwAD.unpack_dual(f(fwAD.make_dual(leaf, v))).tangent
        (hvp,) = torch.autograd.grad(tangent.sum(), leaf)
        torch.testing.assert_close(hvp, numerical_hessian(lambda y: f(y).sum(), x) @ v, atol=1e-5, rtol=1e-5)
    finally:
        torch_fwdad.unregister_jvp("fwdad_custom_test::sin")


def test_operator_can_be_named_by_string_or_overload(x):
    for name in ("fwdad_custom_test::cube", torch.ops.fwdad_custom_test.cube.default):
        torch_fwdad.register_jvp(name, cube_jvp)
        try:
            torch.testing.assert_close(jvp(scaled_cube, (x,), (torch.ones_like(x),))[1], 6 * x * x)
        finally:
            torch_fwdad.unregister_jvp(cube)


def test_check_jvp_accepts_a_registered_op_and_reports_a_nonlinear_one(registered_cube):
    x = torch.linspace(-1, 2, 4)  # float32 on purpose: check_jvp works in float64
    check_jvp(cube, (x, 2.0))
    torch_fwdad.register_jvp(cube, lambda p, t, out: 3 * p[1] * p[0] * p[0] * t[0] ** 2, override=True)
    with pytest.raises(JvpCheckError) as error:
        check_jvp(cube, (x, 2.0))
    assert_expected_inline(str(error.value), """torch_fwdad.check_jvp: the rule of fwdad_custom_test.cube.default fails for output 'result': it is not linear in the tangents: rule(2·t1 - 3·t2) differs from 2·rule(t1) - 3·rule(t2). A JVP rule must be linear in the tangents, or the reverse mode derived from it is wrong (max abs difference 234, atol 1e-05, rtol 0.0001)""")


def _error_of(fn):
    with pytest.raises(Exception) as error:
        fn()
    return f"{type(error.value).__name__}: {error.value}"


def _jvp_with_rule(rule, x):
    torch_fwdad.register_jvp(cube, rule)
    try:
        return _error_of(lambda: jvp(scaled_cube, (x,), (torch.ones_like(x),)))
    finally:
        torch_fwdad.unregister_jvp(cube)


def test_rule_errors_are_pinned(x):
    assert_expected_inline(_jvp_with_rule(lambda p, t, out: t[0][:2], x), """RuntimeError: torch_fwdad: the forward rule of fwdad_custom_test.cube.default (register_jvp) returned a tangent of shape (2,), dtype torch.float64, device cpu for output 'result', which has shape (4,), dtype torch.float64, device cpu; a tangent must match its output""")
    assert_expected_inline(_jvp_with_rule(lambda p, t, out: t[0].float(), x), """RuntimeError: torch_fwdad: the forward rule of fwdad_custom_test.cube.default (register_jvp) returned a tangent of shape (4,), dtype torch.float32, device cpu for output 'result', which has shape (4,), dtype torch.float64, device cpu; a tangent must match its output""")
    assert_expected_inline(_jvp_with_rule(lambda p, t, out: 1.0, x), """RuntimeError: torch_fwdad: the forward rule of fwdad_custom_test.cube.default (register_jvp) returned a float for output 'result'; expected a Tensor or None""")
    assert_expected_inline(_jvp_with_rule(lambda p, t, out: (t[0], t[0]), x), """RuntimeError: torch_fwdad: the forward rule of fwdad_custom_test.cube.default (register_jvp) returned a tuple for output 'result'; expected a Tensor or None""")


def test_registration_errors_are_pinned():
    torch_fwdad.register_jvp(cube, cube_jvp)
    try:
        assert_expected_inline(_error_of(lambda: torch_fwdad.register_jvp(cube, cube_jvp)), """RuntimeError: torch_fwdad: fwdad_custom_test.cube.default already has a forward rule (from register_jvp); pass override=True to replace it, or call unregister_jvp first""")
    finally:
        torch_fwdad.unregister_jvp(cube)
    assert_expected_inline(_error_of(lambda: torch_fwdad.register_jvp(torch.ops.aten.sin.default, cube_jvp)), """RuntimeError: torch_fwdad: aten.sin.default already has a forward-mode formula in PyTorch; torch_fwdad never replaces one silently. If PyTorch's formula is wrong, pass corrects_upstream='<why>'""")
    assert_expected_inline(_error_of(lambda: torch_fwdad.register_jvp(np_sin, cube_jvp, transpose=True)), """RuntimeError: torch_fwdad: register_jvp(..., transpose=True) cannot derive reverse mode for fwdad_custom_test.sin.default: it already has reverse mode from register_autograd, which torch_fwdad leaves untouched""")
    assert_expected_inline(_error_of(lambda: torch_fwdad.register_jvp("fwdad_custom_test::missing", cube_jvp)).replace(torch.__version__, "<torch>"), """ValueError: torch_fwdad: no operator 'fwdad_custom_test::missing' in this torch (<torch>)""")
    assert "fwdad_custom_test::cube" not in {rule.name for rule in torch_fwdad.registered_ops()}


def test_rule_with_wrong_number_of_tangents_for_two_outputs_is_pinned(x):
    @torch.library.custom_op("fwdad_custom_test::sin_cos", mutates_args=())
    def sin_cos(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = x.detach().numpy()
        return torch.from_numpy(np.sin(a)), torch.from_numpy(np.cos(a))

    torch_fwdad.register_jvp(sin_cos, lambda p, t, out: torch.cos(p[0]) * t[0])
    try:
        assert_expected_inline(_error_of(lambda: jvp(sin_cos, (x,), (torch.ones_like(x),))), """RuntimeError: torch_fwdad: the forward rule of fwdad_custom_test.sin_cos.default (register_jvp) must return a tuple of 2 tangents aligned with the outputs ('result0', 'result1') (None for an output without tangent), got Tensor""")
        torch_fwdad.register_jvp(sin_cos, lambda p, t, out: (torch.cos(p[0]) * t[0], -torch.sin(p[0]) * t[0]), override=True)
        t = torch.randn_like(x)
        _, (sin_t, cos_t) = jvp(sin_cos, (x,), (t,))
        torch.testing.assert_close(sin_t, central_difference(lambda y: sin_cos(y)[0], x, t))
        torch.testing.assert_close(cos_t, central_difference(lambda y: sin_cos(y)[1], x, t))
    finally:
        torch_fwdad.unregister_jvp(sin_cos)


def test_a_tangent_on_another_device_or_layout_is_refused_clearly(x):
    """Meta stands in for another device (this machine has one); the message names both."""
    assert_expected_inline(_jvp_with_rule(lambda p, t, out: t[0].to("meta"), x), """RuntimeError: torch_fwdad: the forward rule of fwdad_custom_test.cube.default (register_jvp) returned a tangent of shape (4,), dtype torch.float64, device meta for output 'result', which has shape (4,), dtype torch.float64, device cpu; a tangent must match its output""")
    assert_expected_inline(_jvp_with_rule(lambda p, t, out: t[0].to_sparse(), x), """RuntimeError: torch_fwdad: the forward rule of fwdad_custom_test.cube.default (register_jvp) returned a tangent of shape (4,), dtype torch.float64, device cpu, layout torch.sparse_coo for output 'result', which has shape (4,), dtype torch.float64, device cpu; a tangent must match its output""")


def test_check_jvp_reports_a_wrong_device_rule_clearly(x):
    torch_fwdad.register_jvp(cube, lambda p, t, out: (3 * p[1] * p[0] * p[0] * t[0]).to("meta"))
    try:
        with pytest.raises(RuntimeError, match=r"returned a tangent of .*device meta for output 'result', which has .*device cpu"):
            check_jvp(cube, (x, 2.0))
    finally:
        torch_fwdad.unregister_jvp(cube)


def _squared_tangent_rule(primals, tangents, output):
    return 3 * primals[1] * primals[0] ** 2 * tangents[0] ** 2  # not linear in the tangent


def test_transpose_refuses_a_non_linear_rule_on_first_backward(x):
    torch_fwdad.register_jvp(cube, _squared_tangent_rule, transpose=True)
    try:
        with pytest.raises(RuntimeError) as error:
            torch.autograd.grad(scaled_cube(x.requires_grad_()).sum(), x)
        assert_expected_inline(str(error.value), """torch_fwdad: the forward rule of fwdad_custom_test.cube.default registered with transpose=True is not linear in the tangents (rule(2·t1 - 3·t2) differs from 2·rule(t1) - 3·rule(t2) on random tangents), so the reverse mode derived from it would be wrong. Make the rule linear in the tangents, or pass probe_linearity=False to register_jvp to skip this check.""")
    finally:
        torch_fwdad.unregister_jvp(cube)


def test_transpose_linearity_probe_runs_once_and_can_be_switched_off(x):
    calls = []

    def counted(primals, tangents, output):
        calls.append(1)
        return cube_jvp(primals, tangents, output)

    torch_fwdad.register_jvp(cube, counted, transpose=True)
    try:
        torch.autograd.grad(scaled_cube(x.requires_grad_()).sum(), x)
        first = len(calls)
        (gradient,) = torch.autograd.grad(scaled_cube(x).sum(), x)
        assert len(calls) - first < first  # the second backward skips the three probe calls
        torch.testing.assert_close(gradient, 6 * x.detach() ** 2)
    finally:
        torch_fwdad.unregister_jvp(cube)
    torch_fwdad.register_jvp(cube, _squared_tangent_rule, transpose=True, probe_linearity=False)
    try:
        (gradient,) = torch.autograd.grad(scaled_cube(x).sum(), x)  # switched off: no check, no error
        assert torch.equal(gradient, torch.zeros_like(x))  # the silent zero the probe exists to catch
    finally:
        torch_fwdad.unregister_jvp(cube)
