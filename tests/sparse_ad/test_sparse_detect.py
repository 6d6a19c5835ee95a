"""Structural detection against the true (dense jacfwd) pattern, op family by op family."""

import pytest
import torch
import torch.nn.functional as F

from torch_fwdad.sparse_ad import jacobian_plan, numeric_pattern, structural_pattern

torch.set_default_dtype(torch.float64)
SPARSE_CONSTANT = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
STENCIL = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).reshape(1, 1, 3, 3)

CASES = {
    "pointwise_broadcast": (lambda x: torch.sin(x[:, None] * x[None, :3]), (5,)),
    "reductions": (lambda x: torch.cat([x.sum(0), x.prod(1), x.mean((0, 1), keepdim=True).reshape(-1)]), (3, 4)),
    "max_softmax_cumsum": (lambda x: torch.cat([x.amax(1), x.softmax(1).reshape(-1), x.cumsum(0).reshape(-1)]),
                           (3, 4)),
    "indexing_slicing": (lambda x: x[torch.tensor([2, 0])] * x[1:3].flip(0) + x[::2, 1:2], (4, 3)),
    "views": (lambda x: x.t().reshape(-1)[3:9].unsqueeze(0).expand(2, 6) ** 2, (3, 4)),
    "matmul_sparse_constant": (lambda x: torch.tanh(SPARSE_CONSTANT @ x.reshape(3, 2)), (6,)),
    "matmul_both_tracked": (lambda x: x[:2, :3] @ x[1:, 1:], (4, 4)),
    "conv2d": (lambda x: F.conv2d(x.reshape(1, 1, 6, 6), STENCIL, padding=1), (36,)),
    "cat_pad_roll": (lambda x: torch.cat([F.pad(x, (1, 1)), torch.roll(x, 2)]) * 2, (7,)),
    "write_into_view": (lambda x: _write_into_view(x), (6,)),
}


def _write_into_view(x):
    y = torch.zeros(6)
    y[1:] = x[:-1] * 3
    y[0] += x[5]
    return y


def true_pattern(func, x):
    return (torch.func.jacfwd(func)(x).reshape(-1, x.numel()) != 0).numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_structural_pattern_is_exact_on_supported_ops(name):
    func, shape = CASES[name]
    x = torch.rand(shape) + 0.5
    found = structural_pattern(func, x).toarray()
    expected = true_pattern(func, x)
    assert (found >= expected).all(), "missed a true nonzero"
    if name != "max_softmax_cumsum":  # conservative there: the whole slice along dim, for every x
        assert (found == expected).all()


def test_numeric_pattern_is_exact_and_chunked():
    func, shape = CASES["conv2d"]
    x = torch.rand(shape) + 0.5
    assert (numeric_pattern(func, x, chunk_size=5).toarray() == true_pattern(func, x)).all()


def test_unknown_op_falls_back_dense_with_a_warning():
    def func(x):
        return torch.cat([x[:2] * 2, torch.linalg.det(x[2:].reshape(2, 2)).reshape(1)])
    x = torch.rand(6) + 0.5
    with pytest.warns(RuntimeWarning, match="does not know.*linalg_det"):
        found = structural_pattern(func, x).toarray()
    assert found[:2].sum() == 2 and found[2, 2:].all()


def test_detection_runs_once_per_shape_and_is_cached():
    calls = []

    def func(x):
        calls.append(1)
        return torch.sin(x) * x.roll(1)
    plan = jacobian_plan("detect")
    plan(func, torch.rand(8))
    first = len(calls)
    plan(func, torch.rand(8))
    # trace + evaluation + the default check of a detected pattern, then evaluation only
    assert first == 3 and len(calls) == 4
    assert plan.num_colors == 2
    plan(func, torch.rand(9))
    with pytest.raises(RuntimeError, match="call the plan once first|prepared for 2 input shapes"):
        plan.num_colors
