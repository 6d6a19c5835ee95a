"""Per-call choices of a plan: star or acyclic for method="auto", and the repeated last call."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from torch_fwdad.sparse_ad import Banded, Coloring, SparsityPatternError, hessian_plan, jacobian_plan
from torch_fwdad.sparse_ad.evaluation.cost import cheaper_symmetric_coloring, substitution_worth
from torch_fwdad.sparse_ad.examples import PROBLEMS

torch.set_default_dtype(torch.float64)


def dense(result):
    return result.to_dense() if result.layout != torch.strided else result


def _coloring(kind, num_colors):
    return Coloring(np.arange(4) % num_colors, num_colors, 1, kind, "natural")


@pytest.mark.parametrize("compiled", [False, True])
def test_auto_takes_acyclic_only_when_it_saves_more_colours_than_its_substitution_is_worth(compiled):
    pattern = sp.csr_array(sp.random(40, 40, density=0.2, random_state=0) + sp.eye(40))
    worth = substitution_worth(pattern, compiled)
    assert worth == pytest.approx(pattern.nnz / 40 * (1.5 if compiled else 0.17))
    star_colors = math.floor(worth) + 5
    for saved, expected in [(0, "star"), (math.floor(worth), "star"), (math.floor(worth) + 1, "acyclic")]:
        colorings = [_coloring("star", star_colors), _coloring("acyclic", star_colors - saved)]
        assert cheaper_symmetric_coloring(colorings, pattern, compiled).kind == expected
    # a single candidate (a requested method) is kept whatever it costs
    assert cheaper_symmetric_coloring([_coloring("acyclic", 3)], pattern, compiled).kind == "acyclic"


def test_auto_chooses_by_compile_setting():
    """5-point Laplacian: acyclic saves 2 colours over star. Eager products cost more per colour
    than the substitution (acyclic); compiled ones far less (star, as asdex). The choice is made
    at preparation, so no compiling is needed to see it."""
    energy, u, _ = PROBLEMS["laplacian_hessian"](side=8)
    eager = hessian_plan("detect").prepare(energy, u)
    compiled = hessian_plan("detect", compile=True).prepare(energy, u)
    assert (eager.coloring.kind, eager.coloring.num_colors) == ("acyclic", 3)
    assert compiled.coloring.kind == "star"
    assert compiled.coloring.num_colors > eager.coloring.num_colors


@pytest.mark.slow
@pytest.mark.filterwarnings("error:compile=True:RuntimeWarning")
def test_auto_choice_is_exact_eager_and_compiled():
    energy, u, _ = PROBLEMS["laplacian_hessian"](side=8)
    eager, compiled = hessian_plan("detect"), hessian_plan("detect", compile="aot_eager")
    for point in (u, u + 1, u * 2):  # compiled: the first call is eager, then compiled, then repeated
        expected = torch.func.hessian(energy)(point)
        torch.testing.assert_close(dense(eager(energy, point)), expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(dense(compiled(energy, point)), expected, rtol=0, atol=1e-12)
    assert (eager.coloring.kind, compiled.coloring.kind) == ("acyclic", "star")


@pytest.mark.parametrize("method", ["star", "acyclic"])
def test_a_requested_method_is_honoured(method):
    energy, u, _ = PROBLEMS["laplacian_hessian"](side=6)
    # the colouring is chosen at preparation: no need to compile to see which
    assert hessian_plan("detect", method=method, compile=True).prepare(energy, u).coloring.kind == method
    plan = hessian_plan("detect", method=method)
    for point in (u, u - 1, u * 3):
        torch.testing.assert_close(dense(plan(energy, point)), torch.func.hessian(energy)(point), rtol=0, atol=1e-12)
    assert plan.coloring.kind == method


def _counting_evaluations(plan, monkeypatch):
    calls = []
    original = type(plan)._evaluate

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("output"))
        return original(self, *args, **kwargs)
    monkeypatch.setattr(type(plan), "_evaluate", counted)
    return calls


def test_a_repeated_call_skips_the_full_path_and_gives_fresh_exact_results(monkeypatch):
    func, x, _ = PROBLEMS["tridiagonal"](n=20)
    plan = jacobian_plan(Banded(1, 1))
    calls = _counting_evaluations(plan, monkeypatch)
    first = plan(func, x)
    second = plan(func, 2 * x)  # same signature: repeated, with the new values
    assert len(calls) == 1
    torch.testing.assert_close(dense(first), torch.func.jacfwd(func)(x))  # not overwritten by the second
    torch.testing.assert_close(dense(second), torch.func.jacfwd(func)(2 * x))
    plan(func, x, output="dense")  # another output, shape, function or dtype: the full path again
    plan(func, torch.linspace(0, 1, 21))
    plan(lambda v: torch.cos(v) * v.roll(1) * v.roll(-1), x)
    plan(func, x.float())
    assert len(calls) == 5
    torch.testing.assert_close(plan(func, x.float()).to_dense(), torch.func.jacfwd(func)(x.float()))
    assert len(calls) == 5


def test_a_check_asked_for_runs_on_every_call_even_after_a_repeatable_one(monkeypatch):
    func, x, _ = PROBLEMS["tridiagonal"](n=12)
    plan = jacobian_plan("diagonal")  # misses the off-diagonal entries
    calls = _counting_evaluations(plan, monkeypatch)
    plan(func, x, check=None)
    plan(func, x, check=None)
    assert len(calls) == 1
    for _ in range(2):
        with pytest.raises(SparsityPatternError):
            plan(func, x, check="raise")
    assert len(calls) == 3


def test_a_detected_pattern_is_repeated_only_after_its_check(monkeypatch):
    func, x, _ = PROBLEMS["arrowhead_hessian"](n=9)
    plan = hessian_plan("detect")
    calls = _counting_evaluations(plan, monkeypatch)
    plan(func, x, output="compressed")  # no values, so no check: not repeatable yet
    plan(func, x, output="compressed")
    assert len(calls) == 2
    plan(func, x)  # checks
    plan(func, x)
    assert len(calls) == 3


def test_repeated_calls_with_tuple_inputs_and_compressed_output():
    def func(a, b):
        return torch.cat([a * b[:3], torch.tanh(b[3:])])
    plan = jacobian_plan("detect")
    for scale in (1.0, 2.0, 3.0):
        x = (torch.linspace(0, 1, 3) * scale, torch.linspace(-1, 1, 5) * scale)
        blocks = plan(func, x, output="dense")
        for got, expected in zip(blocks, torch.func.jacfwd(func, argnums=(0, 1))(*x)):
            torch.testing.assert_close(got, expected)
        compressed = plan(func, x, output="compressed")
        flat = torch.cat([p.reshape(-1) for p in x])
        J = torch.func.jacfwd(lambda f: func(f[:3], f[3:]))(flat)
        seeds = torch.nn.functional.one_hot(torch.from_numpy(compressed.coloring.colors)).T.to(flat)
        # column colouring: JVPs J @ seed; row colouring: VJPs seed @ J
        expected = seeds @ (J.T if compressed.coloring.kind == "column" else J)
        torch.testing.assert_close(compressed.matrix, expected)


@pytest.mark.filterwarnings("error:compile=True:RuntimeWarning")
def test_compiled_plans_do_not_share_one_compile_cache():
    """Every plan's evaluation is the same closure code; dynamo caches and limits recompiles per
    code object. With the limit at 1, a second and third plan still compile (the backend sees
    three graphs) when each plan has its own code object."""
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward
    stencil, x, _ = PROBLEMS["tridiagonal"](n=12)
    functions = [stencil, lambda v: v ** 3 + torch.nn.functional.pad(v, (0, 1))[1:], lambda v: torch.cos(v) * v]
    with torch._dynamo.config.patch(recompile_limit=1):
        for func in functions:
            plan = jacobian_plan(Banded(1, 1), compile=counting_backend)
            for point in (x, x + 1, x * 2):  # eager, compiled, repeated
                torch.testing.assert_close(dense(plan(func, point)), torch.func.jacfwd(func)(point))
    assert len(graphs) == len(functions)
