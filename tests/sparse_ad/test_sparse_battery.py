"""Structural detection on a battery of small functions, against torch.func.jacfwd / hessian.

Every case checks two things: the detected pattern covers every nonzero of the true Jacobian
(Hessian) at a random point, and `jacobian/hessian(sparsity="detect")` (whose default check
compares with an exact product) equals the dense result. Ops without an exact rule may make
the pattern denser (and warn); they may never make it miss an entry.
"""

import warnings

import pytest
import torch
import torch.nn.functional as F

from torch_fwdad.sparse_ad import hessian, jacobian, structural_pattern
from torch_fwdad.sparse_ad.detection import detect_hessian_pattern

torch.set_default_dtype(torch.float64)
_generator = torch.Generator().manual_seed(15)
A = torch.randn(5, 12, generator=_generator)
B = torch.randn(12, 12, generator=_generator)
W = torch.randn(3, 4, generator=_generator)
BIAS = torch.randn(3, generator=_generator)
KERNEL1 = torch.randn(2, 1, 3, generator=_generator)
KERNEL2 = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).reshape(1, 1, 3, 3)
TARGET = torch.randn(12, generator=_generator)
CLASSES = torch.tensor([1, 0, 3])
INDEX = torch.tensor([3, 0, 11, 5, 5, 2])
PERMUTATION = torch.randperm(12, generator=_generator)

JACOBIANS = {
    # matmul family (1-D operands are reshaped inside the op: the cases of issue 15)
    "mv": lambda x: A @ x,
    "reshaped_matmul_1d": lambda x: x.reshape(3, 4) @ x[:4],
    "dot": lambda x: torch.dot(x, x).reshape(1),
    "inner": lambda x: torch.inner(x[:6], x[6:]).reshape(1),
    "vdot": lambda x: torch.vdot(x[:6], x[6:] ** 2).reshape(1),
    "matmul_2d": lambda x: x.reshape(3, 4) @ x.reshape(4, 3),
    "bmm": lambda x: torch.bmm(x.reshape(2, 2, 3), x.reshape(2, 3, 2)),
    "einsum": lambda x: torch.einsum("ij,jk->ik", x.reshape(3, 4), W.T),
    "tensordot": lambda x: torch.tensordot(x.reshape(3, 4), x.reshape(4, 3), dims=1),
    "outer": lambda x: torch.outer(x[:3], x[3:6]),
    "linear": lambda x: F.linear(x.reshape(3, 4), W, BIAS),
    "vector_matrix": lambda x: x[:5] @ A,
    # indexing
    "index_tensor": lambda x: x[INDEX] * x[PERMUTATION[:6]],
    "index_select": lambda x: torch.index_select(x.reshape(3, 4), 1, torch.tensor([2, 0])),
    "take": lambda x: torch.take(x.reshape(3, 4), INDEX),
    "masked_select_constant_mask": lambda x: torch.masked_select(x, TARGET > 0),
    # reductions
    "sum_dim": lambda x: x.reshape(3, 4).sum(1) * x[:3],
    "prod": lambda x: x.reshape(4, 3).prod(0),
    "amax": lambda x: x.reshape(3, 4).amax(1),
    "norm": lambda x: torch.linalg.vector_norm(x.reshape(3, 4), dim=0),
    "logsumexp": lambda x: torch.logsumexp(x.reshape(2, 6), 1),
    "var": lambda x: x.reshape(3, 4).var(1),
    "cumsum": lambda x: x.reshape(3, 4).cumsum(1),
    # losses (reduction "none" keeps them elementwise)
    "mse_none": lambda x: F.mse_loss(x, TARGET, reduction="none"),
    "cross_entropy": lambda x: F.cross_entropy(x.reshape(3, 4), CLASSES, reduction="none"),
    "bce_logits": lambda x: F.binary_cross_entropy_with_logits(x, torch.sigmoid(TARGET), reduction="none"),
    "huber_none": lambda x: F.huber_loss(x, TARGET, reduction="none", delta=0.5),
    # normalisations
    "layer_norm": lambda x: F.layer_norm(x.reshape(3, 4), (4,)),
    "batch_norm": lambda x: F.batch_norm(x.reshape(4, 3), None, None, training=True),
    "group_norm": lambda x: F.group_norm(x.reshape(1, 4, 3), 2),
    "normalize": lambda x: F.normalize(x.reshape(3, 4), dim=1),
    # convolution and pooling
    "conv1d": lambda x: F.conv1d(x.reshape(1, 1, 12), KERNEL1, padding=1),
    "conv2d_stencil": lambda x: F.conv2d(x.reshape(1, 1, 3, 4), KERNEL2, padding=1),
    "conv_transpose1d": lambda x: F.conv_transpose1d(x.reshape(1, 2, 6), KERNEL1),
    "max_pool1d": lambda x: F.max_pool1d(x.reshape(1, 1, 12), 3),
    "avg_pool1d": lambda x: F.avg_pool1d(x.reshape(1, 1, 12), 2),
    "adaptive_avg_pool1d": lambda x: F.adaptive_avg_pool1d(x.reshape(1, 2, 6), 4),
    # softmax
    "softmax": lambda x: torch.softmax(x.reshape(3, 4), 1),
    "log_softmax": lambda x: torch.log_softmax(x.reshape(4, 3), 0),
    # scatter / gather
    "gather": lambda x: torch.gather(x.reshape(3, 4), 1, torch.tensor([[0, 3], [1, 1], [2, 0]])),
    "scatter": lambda x: torch.zeros(3, 4).scatter(1, torch.tensor([[0, 3], [1, 2], [2, 0]]), x[:6].reshape(3, 2)),
    "scatter_add": lambda x: torch.zeros(4).scatter_add(0, torch.tensor([0, 1, 1, 3, 0, 2]), x[:6]),
    "index_add": lambda x: torch.zeros(4).index_add(0, torch.tensor([0, 1, 1, 3, 0, 2]), x[6:]),
    "index_put": lambda x: torch.zeros(12).index_put((INDEX[:3],), x[:3]),
    "scatter_reduce_prod": lambda x: x[:4].scatter_reduce(0, torch.tensor([0, 0, 1]), x[4:7], reduce="prod"),
    # movement
    "expand_reshape": lambda x: x[:1].expand(8).reshape(2, 4) * x[:8].reshape(2, 4),
    "flip_roll": lambda x: torch.roll(x.flip(0), 3) * x,
    "reflect_pad": lambda x: F.pad(x.reshape(1, 1, 12), (2, 2), mode="reflect"),
    "unfold": lambda x: x.unfold(0, 4, 2).prod(1),
    "stack_cat": lambda x: torch.stack([torch.cat([x[:3], x[9:]]), x[3:9]]),
    "tril": lambda x: torch.tril(x[:9].reshape(3, 3)),
    "permute": lambda x: x.reshape(2, 3, 2).permute(2, 0, 1).reshape(-1)[:7] ** 2,
    "diagonal": lambda x: torch.diagonal(x[:9].reshape(3, 3)),
    "repeat": lambda x: x[:3].repeat(2) * x[:6],
    "write_into_slice": lambda x: _write_into_slice(x),
    "as_strided": lambda x: x.as_strided((4, 3), (2, 1)),
}

HESSIANS = {
    "quadratic_form": lambda x: x @ (B @ x),
    "sum_squared": lambda x: x.sum() ** 2,
    "mse_loss": lambda x: F.mse_loss(x, TARGET),
    "huber_loss": lambda x: F.huber_loss(x, TARGET, delta=0.5),
    "cross_entropy": lambda x: F.cross_entropy(x.reshape(3, 4), CLASSES),
    "log_softmax_sum": lambda x: (torch.log_softmax(x.reshape(3, 4), 1) * TARGET.reshape(3, 4)).sum(),
    "dot_tanh": lambda x: torch.dot(torch.tanh(x[:6]), x[6:]),
    "layer_norm": lambda x: (F.layer_norm(x.reshape(3, 4), (4,)) ** 3).sum(),
    "conv1d_energy": lambda x: (F.conv1d(x.reshape(1, 1, 12), KERNEL1) ** 2).sum(),
    "expanded": lambda x: (x[:1].expand(8).reshape(2, 4) * x[4:].reshape(2, 4)).sum() ** 2,
    "mv_sin": lambda x: torch.sin(A @ x).sum(),
}


def _write_into_slice(x):
    y = torch.zeros(12)
    y[2:8] = x[:6] * x[6:]
    y[0] += x[11]
    return y


def _point():
    return torch.rand(12, generator=torch.Generator().manual_seed(3)) + 0.5


def _detected(detect, func, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # dense fallbacks are allowed here
        return detect(func, x).toarray()


@pytest.mark.parametrize("name", list(JACOBIANS))
def test_detected_jacobian_covers_the_true_one(name):
    func, x = JACOBIANS[name], _point()
    expected = torch.func.jacfwd(func)(x)
    found = _detected(structural_pattern, func, x)
    truth = (expected.reshape(-1, x.numel()) != 0).numpy()
    assert found.shape == truth.shape
    assert (found | ~truth).all(), f"missed true nonzeros at {list(zip(*(truth & ~found).nonzero()))[:5]}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = jacobian(func, x, sparsity="detect", output="dense")
    torch.testing.assert_close(result, expected)


@pytest.mark.parametrize("name", list(HESSIANS))
def test_detected_hessian_covers_the_true_one(name):
    func, x = HESSIANS[name], _point()
    expected = torch.func.hessian(func)(x)
    found = _detected(detect_hessian_pattern, func, x)
    truth = (expected != 0).numpy()
    assert (found | ~truth).all(), f"missed true nonzeros at {list(zip(*(truth & ~found).nonzero()))[:5]}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = hessian(func, x, sparsity="detect", output="dense")
    torch.testing.assert_close(result, expected)


@pytest.mark.parametrize("name, exact", [
    ("mv", A != 0), ("dot", None), ("expand_reshape", None), ("index_tensor", None), ("conv1d", None),
])
def test_supported_ops_stay_exact(name, exact):
    """Exact rules give the exact pattern, not a dense fallback (no warning)."""
    func, x = JACOBIANS[name], _point()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        found = structural_pattern(func, x).toarray()
    truth = (torch.func.jacfwd(func)(x).reshape(-1, x.numel()) != 0).numpy()
    assert (found == truth).all()


def test_scatter_with_a_reduction_is_not_a_movement():
    """scatter(reduce="multiply") combines entries: dense fallback, never a copy (no forward AD to compare)."""
    def func(x):
        return x[:4].scatter(0, torch.tensor([0, 0, 1]), x[4:7], reduce="multiply")
    with pytest.warns(RuntimeWarning, match="scatter"):
        found = structural_pattern(func, _point()).toarray()
    assert found[0, [0, 4, 5]].all()  # x[0] * x[4] * x[5]
