"""The check matrix must fail on the bugs it exists to catch: one wrong rule per check."""

import pytest
import torch
from torch.autograd.gradcheck import GradcheckError

import torch_fwdad
from torch_fwdad.testing import Sample
from torch_fwdad.testing.checks import check_gradcheck, check_jvp_vjp, check_partial, check_second_order, check_unchanged


def _custom_mul(name, rule):
    """x * y**2 as a custom op with a correct backward and the given forward rule."""

    @torch.library.custom_op(f"fwdad_buggy::{name}", mutates_args=())
    def op(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y**2

    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return grad * y**2, grad * 2 * x * y

    op.register_autograd(backward, setup_context=lambda ctx, inputs, output: ctx.save_for_backward(*inputs))
    torch_fwdad.register_jvp(op, rule)
    return op._opoverload


def _terms(primals, tangents):
    (x, y), (x_t, y_t) = primals, tangents
    return (None if x_t is None else x_t * y**2), (None if y_t is None else 2 * x * y * y_t)


def _sum(a, b):
    return a if b is None else (b if a is None else a + b)


def right(primals, tangents, output):
    return _sum(*_terms(primals, tangents))


def wrong_factor(primals, tangents, output):
    first, second = _terms(primals, tangents)
    return _sum(first, None if second is None else 1.5 * second)


def ignores_y_when_x_has_none(primals, tangents, output):
    first, second = _terms(primals, tangents)
    return None if first is None else _sum(first, second)


def not_differentiable(primals, tangents, output):
    (x, y), _ = primals, tangents
    return right(((x.detach(), y.detach())), tangents, output)


def changes_the_primal(primals, tangents, output):
    output.mul_(1 + 1e-12)
    return right(primals, tangents, output)


SAMPLE = Sample((torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)))
ALL_CHECKS = (check_gradcheck, check_jvp_vjp, check_partial, check_second_order, check_unchanged)


def test_a_right_rule_passes_every_check():
    op = _custom_mul("right", right)
    for check in ALL_CHECKS:
        check(op, SAMPLE)


@pytest.mark.parametrize("rule, check, error, message", [
    (wrong_factor, check_gradcheck, GradcheckError, "Jacobian computed with forward mode mismatch"),
    (wrong_factor, check_jvp_vjp, AssertionError, r"<J t, u> != <t, J\^T u>"),
    (ignores_y_when_x_has_none, check_partial, AssertionError, r"tangents on inputs \(1,\)"),
    (not_differentiable, check_second_order, AssertionError, "forward-over-forward"),
    (changes_the_primal, check_unchanged, AssertionError, "primal output differs"),
], ids=lambda v: getattr(v, "__name__", None))
def test_each_check_catches_its_bug(rule, check, error, message):
    op = _custom_mul(f"{rule.__name__}_{check.__name__}", rule)
    with pytest.raises(error, match=message):
        check(op, SAMPLE)
