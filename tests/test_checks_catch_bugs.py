"""The check matrix must fail on the bugs it exists to catch: one wrong rule per check."""

import pytest
import torch
from torch.autograd.gradcheck import GradcheckError

import torch_fwdad
from torch_fwdad.testing import Sample
from torch_fwdad.testing.checks import (
    check_gradcheck, check_jvp_vjp, check_partial, check_rev_over_fwd_forward_ad, check_rev_over_fwd_func,
    check_rev_over_fwd_vjp, check_second_order, check_unchanged,
)


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
# not check_rev_over_fwd_vjp: torch.func.vjp refuses a custom op's register_autograd in plain
# PyTorch too (its autograd.Function has no setup_context); an aten kernel tests it below
ALL_CHECKS = (check_gradcheck, check_jvp_vjp, check_partial, check_second_order, check_unchanged,
              check_rev_over_fwd_func, check_rev_over_fwd_forward_ad)


def test_a_right_rule_passes_every_check():
    op = _custom_mul("right", right)
    for check in ALL_CHECKS:
        check(op, SAMPLE)


@pytest.mark.parametrize("rule, check, error, message", [
    (wrong_factor, check_gradcheck, GradcheckError, "Jacobian computed with forward mode mismatch"),
    (wrong_factor, check_jvp_vjp, AssertionError, r"<J t, u> != <t, J\^T u>"),
    (ignores_y_when_x_has_none, check_partial, AssertionError, r"tangents on inputs \(1,\)"),
    (not_differentiable, check_second_order, AssertionError, "forward-over-forward"),
    (not_differentiable, check_rev_over_fwd_func, AssertionError, r"reverse-over-forward \(autograd beneath torch.func.jvp\)"),
    (not_differentiable, check_rev_over_fwd_forward_ad, AssertionError,
     r"reverse-over-forward \(autograd.grad over forward_ad\)"),
    (changes_the_primal, check_unchanged, AssertionError, "primal output differs"),
], ids=lambda v: getattr(v, "__name__", None))
def test_each_check_catches_its_bug(rule, check, error, message):
    op = _custom_mul(f"{rule.__name__}_{check.__name__}", rule)
    with pytest.raises(error, match=message):
        check(op, SAMPLE)


# ---------------------------------------------------------------- second order and vmap
# These bugs need a real aten kernel (forward_ad over autograd.grad refuses custom ops,
# whose backward may save anything): each test swaps one installed rule for a broken one.

from contextlib import contextmanager  # noqa: E402

from torch_fwdad.engine import registry  # noqa: E402
from torch_fwdad.testing.checks import (  # noqa: E402
    check_fwd_over_rev_forward_ad, check_fwd_over_rev_func, check_output_tangents, check_vmap_jvp,
)

FLASH = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default
CDIST = torch.ops.aten._cdist_forward.default


@contextmanager
def _broken(op, make_rule):
    previous = registry._registrations[op]
    torch_fwdad.register_jvp(op, make_rule(previous.rule), override=True, corrects_upstream=previous.corrects_upstream)
    try:
        yield
    finally:
        torch_fwdad.register_jvp(op, previous.rule, override=True, corrects_upstream=previous.corrects_upstream,
                                 when=previous.when, _origin=previous.origin)


def _drops_logsumexp(rule):
    # the weight-norm `norms` bug class: an output PyTorch's backward reads gets no tangent
    return lambda primals, tangents, output: (rule(primals, tangents, output)[0], None)


def _branches_on_values(rule):
    def branchy(primals, tangents, output):
        if bool((primals[0] > 0).any()):  # Python control flow on tensor values: not vmap-able
            return rule(primals, tangents, output)
        return rule(primals, tangents, output)
    return branchy


def _qkv():
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(1, 2, 4, 3, dtype=torch.float64, generator=generator) for _ in range(3))


FLASH_SAMPLE = Sample(_qkv(), dict(is_causal=True))
CDIST_SAMPLE = Sample((torch.randn(3, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64), 2.0, None))


def _detaches_primals(rule):
    # the right tangent value from inputs cut off from autograd: reverse over forward sees no
    # dependence of the tangent on the inputs (first-order checks cannot tell)
    def detached(primals, tangents, output):
        return rule(tuple(p.detach() if isinstance(p, torch.Tensor) else p for p in primals), tangents, output)
    return detached


def test_the_new_checks_pass_on_the_installed_rules():
    for check in (check_fwd_over_rev_func, check_fwd_over_rev_forward_ad, check_output_tangents):
        check(FLASH, FLASH_SAMPLE)
    for check in (check_vmap_jvp, check_rev_over_fwd_func, check_rev_over_fwd_forward_ad, check_rev_over_fwd_vjp):
        check(CDIST, CDIST_SAMPLE)


def test_a_tangent_from_detached_inputs_has_right_values():
    # so only the reverse-over-forward checks below can tell
    with _broken(CDIST, _detaches_primals):
        check_gradcheck(CDIST, CDIST_SAMPLE)


@pytest.mark.parametrize("op, sample, bug, check, message", [
    (FLASH, FLASH_SAMPLE, _drops_logsumexp, check_output_tangents, r"floating outputs \[1\] .* get no tangent"),
    (FLASH, FLASH_SAMPLE, _drops_logsumexp, check_fwd_over_rev_func,
     r"forward-over-reverse \(torch.func.jvp of torch.func.vjp\)"),
    (FLASH, FLASH_SAMPLE, _drops_logsumexp, check_fwd_over_rev_forward_ad,
     r"forward-over-reverse \(forward_ad over autograd.grad\)"),
    (CDIST, CDIST_SAMPLE, _detaches_primals, check_rev_over_fwd_func,
     r"reverse-over-forward \(autograd beneath torch.func.jvp\)"),
    (CDIST, CDIST_SAMPLE, _detaches_primals, check_rev_over_fwd_forward_ad,
     r"reverse-over-forward \(autograd.grad over forward_ad\)"),
    (CDIST, CDIST_SAMPLE, _detaches_primals, check_rev_over_fwd_vjp,
     r"reverse-over-forward \(torch.func.vjp of torch.func.jvp\)"),
], ids=["flash-output_tangents", "flash-fwd_over_rev_func", "flash-fwd_over_rev_forward_ad", "cdist-rev_over_fwd_func",
        "cdist-rev_over_fwd_forward_ad", "cdist-rev_over_fwd_vjp"])
def test_a_second_order_bug_is_caught(op, sample, bug, check, message):
    with _broken(op, bug):
        with pytest.raises(AssertionError, match=message):
            check(op, sample)


def test_control_flow_on_values_is_caught_by_vmap():
    with _broken(CDIST, _branches_on_values):
        with pytest.raises(RuntimeError, match="data-dependent control flow|item"):
            check_vmap_jvp(CDIST, CDIST_SAMPLE)
