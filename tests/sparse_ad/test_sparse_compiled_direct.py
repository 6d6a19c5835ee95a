"""Compiled plans call their graph directly, after dynamo's guards: never a stale answer.

The "aot_eager" backend compiles in well under a second and makes the same dynamo frame, guards
and graph as inductor; what these tests reach is the plan's direct call around them.
"""

import pytest
import torch

import torch_fwdad.sparse_ad.evaluation.compiled as compiled_module
from torch_fwdad.sparse_ad import Banded, hessian_plan, jacobian_plan

pytestmark = pytest.mark.filterwarnings("error:compile=True:RuntimeWarning")  # an eager fallback fails a test

torch.set_default_dtype(torch.float64)
SCALE = 2.0


def dense(result):
    return result.to_dense() if result.layout != torch.strided else result


def evaluation_of(plan):
    return next(iter(plan._only_prepared()._compiled.values()))


def full_path_calls(evaluation, monkeypatch):
    """Count the calls that go through torch.compile's frame (the direct call does not)."""
    calls = []
    full = evaluation.compiled

    def counting(x):
        calls.append(1)
        return full(x)
    monkeypatch.setattr(evaluation, "compiled", counting)
    return calls


def test_a_compiled_plan_calls_its_graph_directly_until_a_guard_fails(monkeypatch):
    """A rebound closure variable of the same function object fails dynamo's guard: torch.compile
    recompiles, and the plan never returns the old graph's answer."""
    scale = 2.0

    def func(v):
        return scale * torch.sin(v) * torch.nn.functional.pad(v, (0, 1))[1:]
    x = torch.linspace(0, 1, 9)
    plan = jacobian_plan(Banded(0, 1), compile="aot_eager")
    plan(func, x)
    plan(func, x)  # compiles
    evaluation = evaluation_of(plan)
    assert evaluation.direct is not None and evaluation.direct.of_function  # func's own guards, not torch.func's
    calls = full_path_calls(evaluation, monkeypatch)
    for point in (x + 1, x * 3):
        torch.testing.assert_close(dense(plan(func, point)), torch.func.jacfwd(func)(point))
    assert calls == []
    scale = 5.0
    torch.testing.assert_close(dense(plan(func, x)), torch.func.jacfwd(func)(x))
    assert calls == [1]
    scale = 2.0  # the function's guards pass again: the direct call on them was kept
    torch.testing.assert_close(dense(plan(func, x)), torch.func.jacfwd(func)(x))
    assert calls == [1] and evaluation.direct.of_function


def test_after_a_dynamo_reset_the_plan_compiles_again_and_calls_the_new_graph():
    func = lambda v: torch.sin(v) * torch.nn.functional.pad(v, (0, 1))[1:]  # noqa: E731
    x = torch.linspace(0, 1, 9)
    plan = jacobian_plan(Banded(0, 1), compile="aot_eager")
    plan(func, x)
    plan(func, x)
    evaluation = evaluation_of(plan)
    old = evaluation.direct
    torch._dynamo.reset()  # dynamo forgets the graph and its guards: the plan must not keep using them
    torch.testing.assert_close(dense(plan(func, x + 1)), torch.func.jacfwd(func)(x + 1))
    assert evaluation.direct is not None and evaluation.direct is not old


def test_a_function_that_acts_otherwise_under_torch_func_keeps_the_evaluations_guards():
    """Its graph alone (captured outside torch.func, where x does not require grad) is not what
    the Hessian differentiates: the plan sees the difference when it arms the direct call."""
    def energy(v):
        return (v ** 3).sum() if v.requires_grad else (v ** 2).sum()
    x = torch.linspace(0.5, 1.5, 8)
    plan = hessian_plan("diagonal", compile="aot_eager")
    plan(energy, x)
    plan(energy, x)
    direct = evaluation_of(plan).direct
    assert direct is None or not direct.of_function
    torch.testing.assert_close(dense(plan(energy, x + 1)), torch.func.hessian(energy)(x + 1))


@pytest.mark.slow
def test_a_changed_global_takes_the_full_path(monkeypatch):
    def func(v):
        return SCALE * torch.sin(v) * v + torch.nn.functional.pad(v, (0, 1))[1:]
    x = torch.linspace(0, 1, 10)
    plan = jacobian_plan(Banded(0, 1), compile="aot_eager")
    plan(func, x)
    plan(func, x)
    calls = full_path_calls(evaluation_of(plan), monkeypatch)
    monkeypatch.setattr(__import__(__name__), "SCALE", 7.0)
    torch.testing.assert_close(dense(plan(func, x)), torch.func.jacfwd(func)(x))
    assert calls == [1]


@pytest.mark.slow
def test_other_dtypes_shapes_and_functions_are_exact():
    plan = jacobian_plan(Banded(1, 1), compile="aot_eager")
    first = lambda v: torch.nn.functional.pad(v, (1, 1))[2:] * v  # noqa: E731
    second = lambda v: torch.cos(torch.nn.functional.pad(v, (1, 0))[:-1]) + v ** 2  # noqa: E731
    for func in (first, second, first):
        for x in (torch.linspace(0, 1, 12), torch.linspace(0, 1, 12, dtype=torch.float32), torch.linspace(0, 1, 7)):
            for point in (x, x + 1, x * 2):
                torch.testing.assert_close(dense(plan(func, point)), torch.func.jacfwd(func)(point))


def test_a_tensor_the_function_reads_keeps_the_full_path():
    """A graph input the plan does not own (the user's matrix) could be rebound with the same
    shape, which dynamo's guards allow: such evaluations never call the graph directly."""
    A = torch.diag(torch.arange(1.0, 7.0)) + torch.diag(torch.ones(5), 1)

    def func(v):
        return A @ torch.sin(v)
    x = torch.linspace(0, 1, 6)
    plan = jacobian_plan(Banded(0, 1), compile="aot_eager")
    plan(func, x)
    plan(func, x)
    assert evaluation_of(plan).direct is None
    A = A * 3
    torch.testing.assert_close(dense(plan(func, x)), torch.func.jacfwd(func)(x))


@pytest.mark.slow
def test_direct_and_full_path_agree_bitwise_for_hessians(monkeypatch):
    energy = lambda u: (torch.cos(u[1:] - u[:-1])).sum() + (u ** 4).sum()  # noqa: E731
    x = torch.linspace(0, 2, 40)
    plan = hessian_plan("detect", compile="aot_eager")
    plan(energy, x)
    plan(energy, x)
    direct = dense(plan(energy, x + 1))
    monkeypatch.setattr(compiled_module._DirectCall, "disabled", True)
    assert torch.equal(direct, dense(plan(energy, x + 1)))


def test_only_graphs_that_call_sin_cos_and_the_like_materialize_their_broadcast_values():
    """inductor's realize_opcount_threshold=0 computes sin(x) once instead of once per colour
    (benchmarks/bench_sparse.py: tridiagonal), and measured slower on graphs without them."""
    assert compiled_module.calls_recomputed_if_inlined(torch.fx.symbolic_trace(lambda v: torch.sin(v) * v))
    assert compiled_module.calls_recomputed_if_inlined(torch.fx.symbolic_trace(lambda v: v.cos() + 1))
    assert compiled_module.calls_recomputed_if_inlined(torch.fx.symbolic_trace(lambda v: torch.special.erf(v)))
    assert not compiled_module.calls_recomputed_if_inlined(torch.fx.symbolic_trace(lambda v: (v[1:] - v[:-1]) ** 2))
