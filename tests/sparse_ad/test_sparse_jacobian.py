"""jacobian / hessian against dense torch.func.jacfwd / hessian, every sparsity mode and output."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from torch_fwdad.sparse_ad import (
    Banded, BlockDiagonal, SparsityPatternError, hessian, hessian_plan, jacobian, jacobian_plan,
)
from torch_fwdad.sparse_ad.examples import PROBLEMS

torch.set_default_dtype(torch.float64)


def random_bool(m, n, density, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(m, n, generator=generator) < density


def masked_map(pattern, seed=0):
    """y = sin(W x) * x[: m] -like map whose Jacobian pattern is exactly `pattern` (plus nothing)."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(pattern.shape, generator=generator) * pattern
    return lambda x: torch.sin(weights @ x.reshape(-1)) + (weights ** 2) @ x.reshape(-1) ** 3


def dense(result):
    return result.to_dense() if result.layout != torch.strided else result


PATTERN_FORMS = {
    "bool_tensor": lambda p: p,
    "torch_coo": lambda p: p.to_sparse_coo(),
    "torch_csr": lambda p: p.to_sparse_csr(),
    "scipy": lambda p: sp.csr_array(p.numpy()),
}


@pytest.mark.parametrize("form", list(PATTERN_FORMS))
@pytest.mark.parametrize("mode", ["column", "row", "auto"])
@pytest.mark.parametrize("seed", range(3))
def test_explicit_patterns_match_jacfwd(form, mode, seed):
    pattern = random_bool(30, 20, 0.1, seed)
    func, x = masked_map(pattern, seed), torch.randn(20)
    result = jacobian(func, x, sparsity=PATTERN_FORMS[form](pattern), mode=mode)
    torch.testing.assert_close(dense(result), torch.func.jacfwd(func)(x))


@pytest.mark.parametrize("output", ["sparse", "coo", "csr", "dense"])
def test_outputs_and_shapes_follow_jacfwd(output):
    def func(x):
        return (torch.sin(x) * x.flip(0)).reshape(2, 3, 2)
    x = torch.randn(3, 4)
    pattern = torch.func.jacfwd(func)(x).reshape(12, 12) != 0
    result = jacobian(func, x, sparsity=pattern, output=output)
    expected = torch.func.jacfwd(func)(x)
    if output == "csr":
        assert result.layout == torch.sparse_csr and result.shape == (12, 12)
        expected = expected.reshape(12, 12)
    torch.testing.assert_close(dense(result), expected)


@pytest.mark.parametrize("sparsity, func", [
    ("diagonal", lambda x: torch.exp(x) * x),
    (BlockDiagonal(4), lambda x: (x.reshape(-1, 4).cumsum(1) ** 2).reshape(-1)),
    (Banded(2, 1), lambda x: torch.nn.functional.pad(x, (2, 1)).unfold(0, 4, 1).prod(1)),
])
@pytest.mark.parametrize("mode", ["column", "row"])
def test_structured_sparsity_matches_jacfwd(sparsity, func, mode):
    x = torch.rand(24) + 0.5
    plan = jacobian_plan(sparsity, mode=mode)
    torch.testing.assert_close(dense(plan(func, x)), torch.func.jacfwd(func)(x))
    assert plan.num_colors == {"diagonal": 1}.get(sparsity, 4)


@pytest.mark.parametrize("sparsity", ["detect", "detect-numeric"])
def test_detected_patterns_on_tuple_inputs(sparsity):
    def func(a, b):
        return torch.cat([a * b[:3], torch.tanh(b[3:] - a.sum())])
    x = (torch.randn(3), torch.randn(5))
    result = jacobian(func, x, sparsity=sparsity)
    for got, expected in zip(result, torch.func.jacfwd(func, argnums=(0, 1))(*x)):
        torch.testing.assert_close(dense(got), expected)


def test_chunked_equals_unchunked():
    pattern = random_bool(40, 40, 0.15, 7)
    func, x = masked_map(pattern, 7), torch.randn(40)
    for mode in ("column", "row"):
        plan = jacobian_plan(pattern, mode=mode)
        assert plan.num_colors > 3
        assert torch.equal(dense(plan(func, x)), dense(plan(func, x, chunk_size=2)))
    symmetric = pattern | pattern.T
    weights = torch.randn(40, 40) * symmetric

    def energy(x):
        return (weights * torch.outer(torch.sin(x), torch.sin(x))).sum()
    plan = hessian_plan(symmetric)
    assert torch.equal(dense(plan(energy, x)), dense(plan(energy, x, chunk_size=3)))


@pytest.mark.parametrize("method", ["star", "acyclic"])
@pytest.mark.parametrize("seed", range(3))
def test_hessians_on_random_patterns(method, seed):
    pattern = random_bool(25, 25, 0.1, seed)
    pattern = pattern | pattern.T
    weights = torch.randn(25, 25, generator=torch.Generator().manual_seed(seed)) * pattern

    def energy(x):
        return (weights * torch.outer(torch.sin(x), torch.cos(x))).sum() + (x ** 4).sum()
    x = torch.randn(25)
    result = hessian(energy, x, sparsity=pattern | torch.eye(25, dtype=torch.bool), method=method, check="raise")
    torch.testing.assert_close(dense(result), torch.func.hessian(energy)(x))


@pytest.mark.parametrize("name, size", [
    ("tridiagonal", {"n": 60}), ("diagonal_square", {"n": 30}), ("brusselator", {"N": 6}),
    ("laplacian_hessian", {"side": 7}), ("arrowhead_hessian", {"n": 40}), ("banded_dense_row_hessian", {"n": 40}),
])
@pytest.mark.parametrize("sparsity", ["detect", "detect-numeric"])
def test_benchmark_problems_small(name, size, sparsity):
    func, x, kind = PROBLEMS[name](**size)
    if kind == "hessian":
        for method in ("star", "acyclic"):
            result = hessian(func, x, sparsity=sparsity, method=method, check="raise")
            torch.testing.assert_close(dense(result), torch.func.hessian(func)(x))
    else:
        result = jacobian(func, x, sparsity=sparsity, check="raise")
        torch.testing.assert_close(dense(result), torch.func.jacfwd(func)(x))


def test_dense_sparsity_is_jacfwd():
    func, x = masked_map(random_bool(6, 5, 0.5, 1)), torch.randn(5)
    assert torch.equal(jacobian(func, x), torch.func.jacfwd(func)(x))
    torch.testing.assert_close(jacobian(func, x, mode="row", chunk_size=2), torch.func.jacfwd(func)(x))


def test_plan_is_reused_across_points():
    func, x, _ = PROBLEMS["tridiagonal"](n=50)
    plan = jacobian_plan("detect")
    first, second = plan(func, x), plan(func, x + 1)
    assert plan.num_colors == 3 and plan.coloring.lower_bound == 3
    torch.testing.assert_close(dense(second), torch.func.jacfwd(func)(x + 1))
    assert not torch.equal(dense(first), dense(second))


def test_missing_nonzeros_raise_or_warn_in_check_mode():
    func, x, _ = PROBLEMS["tridiagonal"](n=20)
    too_sparse = Banded(0, 1)  # misses the sub-diagonal
    with pytest.raises(SparsityPatternError, match="misses nonzeros of the Jacobian: rows"):
        jacobian(func, x, sparsity=too_sparse, check="raise")
    with pytest.warns(RuntimeWarning, match="misses nonzeros"):
        jacobian(func, x, sparsity=too_sparse, mode="row", check="warn")
    jacobian(func, x, sparsity=Banded(1, 1), check="raise")  # the right pattern passes
    energy, y, _ = PROBLEMS["arrowhead_hessian"](n=10)
    with pytest.raises(SparsityPatternError, match="Hessian"):
        hessian(energy, y, sparsity="diagonal", check="raise")


def test_bad_input_gets_clear_errors():
    func, x = (lambda x: x * 2), torch.randn(4)
    with pytest.raises(ValueError, match="pattern has 3 columns but x has 4 entries"):
        jacobian(func, x, sparsity=torch.eye(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="must be 2-D"):
        jacobian(func, x, sparsity=torch.ones(4, dtype=torch.bool))
    with pytest.raises(TypeError, match="must be boolean"):
        jacobian(func, x, sparsity=torch.eye(4))
    with pytest.raises(TypeError, match="must be boolean"):
        jacobian(func, x, sparsity=sp.eye_array(4))
    with pytest.raises(TypeError, match="single tensor"):
        jacobian(lambda x: (x, x), x, sparsity="diagonal")
    with pytest.raises(ValueError, match="unknown sparsity 'banded'"):
        jacobian(func, x, sparsity="banded")
    with pytest.raises(ValueError, match="mode must be one of"):
        jacobian(func, x, sparsity="diagonal", mode="forward")
    with pytest.raises(ValueError, match="single number"):
        hessian(func, x, sparsity="diagonal")
    with pytest.raises(TypeError, match="floating point"):
        jacobian(func, torch.arange(4), sparsity="diagonal")
    with pytest.raises(ValueError, match="block_size"):
        BlockDiagonal(0)
    with pytest.raises(ValueError, match="rows but func returns"):
        jacobian(lambda x: x[:2], x, sparsity=sp.csr_array(np.ones((4, 4), dtype=bool)))


@pytest.mark.parametrize("output, layout", [("scipy", sp.csr_array), ("scipy-csc", sp.csc_array)])
def test_scipy_outputs_are_the_flattened_jacobian(output, layout):
    func, x = masked_map(random_bool(9, 7, 0.3, 4), 4), torch.randn(7)
    result = jacobian(func, x, sparsity="detect", output=output)
    assert isinstance(result, layout) and result.shape == (9, 7)
    np.testing.assert_allclose(result.toarray(), torch.func.jacfwd(func)(x).numpy())
    result.data[:] = 0  # the result owns its arrays: the plan's buffers are untouched
    np.testing.assert_allclose(jacobian(func, x, sparsity="detect", output=output).toarray(),
                               torch.func.jacfwd(func)(x).numpy())


def test_scipy_output_per_input_block_and_for_hessians():
    def func(a, b):
        return torch.cat([a * b[:3], torch.tanh(b[3:])])
    x = (torch.randn(3), torch.randn(5))
    blocks = jacobian(func, x, sparsity="detect", output="scipy")
    for got, expected in zip(blocks, torch.func.jacfwd(func, argnums=(0, 1))(*x)):
        np.testing.assert_allclose(got.toarray(), expected.numpy())
    energy, y, _ = PROBLEMS["laplacian_hessian"](side=5)
    H = hessian(energy, y, sparsity="detect", output="scipy")
    np.testing.assert_allclose(H.toarray(), torch.func.hessian(energy)(y).reshape(25, 25).numpy())


@pytest.mark.parametrize("name, size", [("tridiagonal", {"n": 30}), ("arrowhead_hessian", {"n": 12})])
def test_compressed_output_decompresses_by_hand(name, size):
    """The compressed products and the colouring are enough to rebuild every entry."""
    func, x, kind = PROBLEMS[name](**size)
    plan = hessian_plan("detect", method="star") if kind == "hessian" else jacobian_plan("detect", mode="column")
    result = plan(func, x, output="compressed")
    colors, pattern = result.coloring.colors, result.pattern
    assert result.matrix.shape[0] == plan.num_colors == result.coloring.num_colors
    expected = (torch.func.hessian if kind == "hessian" else torch.func.jacfwd)(func)(x).reshape(pattern.shape)
    rows, cols = pattern.nonzero()
    if kind == "jacobian":  # column colouring: J[i, j] = matrix[color[j], i]
        torch.testing.assert_close(result.matrix[colors[cols], rows], expected[rows, cols])
    else:  # star colouring, symmetric: each entry is read from one side
        both = torch.stack([result.matrix[colors[cols], rows], result.matrix[colors[rows], cols]])
        assert ((both - expected[rows, cols]).abs().min(0).values < 1e-10).all()


def test_detected_patterns_are_checked_by_default_once():
    calls = []

    def func(x):
        calls.append(1)
        return torch.sin(x) * x.roll(1)
    plan = jacobian_plan("detect")
    x = torch.rand(8)
    plan(func, x)
    assert len(calls) == 3  # trace, products, the check's exact JVP
    plan(func, x)
    assert len(calls) == 4  # products only
    explicit = jacobian_plan(plan.pattern)
    explicit(func, x)
    assert len(calls) == 5  # a given pattern is not checked unless asked


def test_default_check_catches_a_detected_pattern_wrong_elsewhere():
    """Value-dependent control flow: the trace follows one branch; the check at the first evaluation
    sees the other branch's nonzeros when the plan is first evaluated where it is taken."""
    def func(x):
        return x * 2 if x.sum() > 0 else x * x.roll(1)
    plan = jacobian_plan("detect")
    plan.prepare(func, torch.ones(6))  # traced where the pattern is diagonal
    with pytest.raises(SparsityPatternError):
        plan(func, -torch.ones(6))


@pytest.mark.filterwarnings("error:compile=True:RuntimeWarning")  # a fallback to eager fails the test
def test_compiled_plan_matches_eager():
    func, x, _ = PROBLEMS["tridiagonal"](n=30)
    eager, compiled = jacobian_plan("detect"), jacobian_plan("detect", compile="aot_eager")
    for point in (x, x + 1, x * 2):  # the first call is eager, then compiled
        torch.testing.assert_close(dense(compiled(func, point)), dense(eager(func, point)))
    assert len(compiled._only_prepared()._compiled) == 1


@pytest.mark.slow
@pytest.mark.filterwarnings("error:compile=True:RuntimeWarning")
def test_inductor_compiled_plans_match_dense():
    func, x, _ = PROBLEMS["burgers_flux"](n=60)
    compiled = jacobian_plan("detect", compile=True)
    for point in (x, x + 1):
        torch.testing.assert_close(dense(compiled(func, point)), torch.func.jacfwd(func)(point))
    energy, y, _ = PROBLEMS["arrowhead_hessian"](n=10)
    compiled_h = hessian_plan("detect", compile=True)
    for point in (y, y + 0.5):
        torch.testing.assert_close(dense(compiled_h(energy, point)), torch.func.hessian(energy)(point))


@pytest.mark.parametrize("sparsity", ["diagonal", Banded(1, 1), BlockDiagonal(3), "explicit", "detect"])
def test_prepared_plans_do_no_pattern_work_per_call(sparsity, monkeypatch):
    """After the first call a plan only runs the products: no pattern, colouring, decompression or
    index-buffer building, whatever the sparsity form (Banded used to rebuild its pattern)."""
    import torch_fwdad.sparse_ad.evaluation.prepared as prepared
    import torch_fwdad.sparse_ad.plans as plans
    func, x = (lambda x: torch.sin(x) * x), torch.linspace(0, 1, 24)  # diagonal: fits every form below
    if sparsity == "explicit":
        sparsity = Banded(1, 1).build(24, 24)
    plan = jacobian_plan(sparsity)
    plan(func, x)
    counts = {"pattern": 0, "coloring": 0, "assembly": 0}

    def counting(name, original):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)
        return wrapper
    monkeypatch.setattr(plans, "resolve_pattern", counting("pattern", plans.resolve_pattern))
    monkeypatch.setattr(plans, "color_pattern", counting("coloring", plans.color_pattern))
    monkeypatch.setattr(prepared.Assembly, "__init__", counting("assembly", prepared.Assembly.__init__))
    for point in (x, x + 1, x * 3):
        result = plan(func, point)
    torch.testing.assert_close(dense(result), torch.func.jacfwd(func)(x * 3))
    assert counts == {"pattern": 0, "coloring": 0, "assembly": 0}
