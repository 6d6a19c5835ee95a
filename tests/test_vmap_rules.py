"""vmap over forward rules with batched primals, against a Python loop over the batch.

A rule that branches on tensor values (`bool(zero.any())`, `.item()`) raises vmap's
data-dependent control-flow error, and one that writes in place into a tensor without a
batching rule fails or falls back; both show here. Index tensors stay unbatched (they
are not primals); the values they select are batched.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

DT = torch.float64
BATCH = 3

pytestmark = pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta:UserWarning")


def _batched(*shape, seed):
    return torch.randn(BATCH, *shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


def _with_zeros(x, *positions):
    """Zeros in every batch member at `positions` (per member index), two in one group included."""
    x = x.clone()
    for position in positions:
        x[(slice(None), *position)] = 0
    return x


def _assert_vmap_of_jacfwd_matches_loop(f, *primals):
    argnums = tuple(range(len(primals)))
    batched = torch.vmap(torch.func.jacfwd(f, argnums=argnums))(*primals)
    for b in range(BATCH):
        looped = torch.func.jacfwd(f, argnums=argnums)(*(p[b] for p in primals))
        for k in argnums:
            torch.testing.assert_close(batched[k][b], looped[k])


INDEX = torch.tensor([0, 2, 0, 4])  # row 0 twice
SCATTER_INDEX = torch.tensor([[0, 1, 0], [0, 2, 2], [4, 1, 0], [0, 2, 4]])


def _reduce_inputs():
    self_ = _with_zeros(_batched(5, 3, seed=0), (0, 0))
    # rows 0 and 2 of the source both go to row 0: two zeros in group (0, 1)
    source = _with_zeros(_batched(4, 3, seed=1), (0, 1), (2, 1), (3, 0))
    return self_, source


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
def test_index_reduce(reduce, include_self):
    def f(self_, source):
        return self_.index_reduce(0, INDEX, source, reduce, include_self=include_self)

    _assert_vmap_of_jacfwd_matches_loop(f, *_reduce_inputs())


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["prod", "sum", "mean", "amax", "amin"])
def test_scatter_reduce(reduce, include_self):
    def f(self_, src):
        return self_.scatter_reduce(0, SCATTER_INDEX, src, reduce, include_self=include_self)

    _assert_vmap_of_jacfwd_matches_loop(f, *_reduce_inputs())


def test_scatter_reduce_prod_second_order_under_vmap():
    """Second order through the prod rule under vmap, two zeros in a group: jacfwd over jacfwd
    (jacrev would run PyTorch's prod backward, which branches on values itself)."""
    def f(src):
        return torch.zeros(5, 3, dtype=DT).add(1.5).scatter_reduce(0, SCATTER_INDEX, src, "prod").sum()

    src = _reduce_inputs()[1]
    hessian = torch.func.jacfwd(torch.func.jacfwd(f))
    batched = torch.vmap(hessian)(src)
    for b in range(BATCH):
        torch.testing.assert_close(batched[b], hessian(src[b]))


LENGTHS = torch.tensor([2, 0, 2, 4])


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
def test_segment_reduce_and_its_backward(reduce):
    """jacfwd of the gradient: the forward rule and the _segment_reduce_backward rule under vmap."""
    data = _with_zeros(_batched(8, seed=2), (3,), (5,), (6,))

    def gradient(data):
        return torch.func.grad(lambda d: torch.segment_reduce(d, reduce, lengths=LENGTHS, initial=2).pow(2).sum())(data)

    _assert_vmap_of_jacfwd_matches_loop(gradient, data)


MARGIN_TARGET = torch.tensor([0, 2, 1])


@pytest.mark.parametrize("loss", ["multi_margin_p1", "multi_margin_p2", "multilabel_margin"])
def test_margin_loss_gradients(loss):
    def gradient(x):
        def f(x):
            if loss == "multilabel_margin":
                return F.multilabel_margin_loss(x, torch.tensor([[0, 3, -1, 1], [2, -1, 0, 0], [1, 1, 1, 1]]))
            return F.multi_margin_loss(x, MARGIN_TARGET, p=1 if loss.endswith("p1") else 2)
        return torch.func.grad(f)(x)

    _assert_vmap_of_jacfwd_matches_loop(gradient, 3 * _batched(3, 4, seed=3))


def test_ctc_loss_gradient():
    """jacfwd of the CTC gradient: the _ctc_loss rule (log_alpha tangent) and the
    _ctc_loss_backward rule (beta recursion) under vmap, lengths unbatched."""
    targets = torch.tensor([[1, 2, 1], [3, 3, 0]])

    def gradient(logits):
        def f(logits):
            log_probs = F.log_softmax(logits, -1)
            return F.ctc_loss(log_probs, targets, torch.tensor([5, 4]), torch.tensor([3, 2]), reduction="sum")
        return torch.func.grad(f)(logits)

    _assert_vmap_of_jacfwd_matches_loop(gradient, _batched(5, 2, 4, seed=4))


GRADIENTS = {
    "cdist_p1.5": lambda x: torch.cdist(x[:2], x[2:], p=1.5, compute_mode="donot_use_mm_for_euclid_dist").pow(1.5).sum(),
    "pdist_p3": lambda x: torch.tanh(torch.pdist(x, p=3.0)).sum(),
    "soft_margin": lambda x: F.soft_margin_loss(x, torch.tensor([[1.0, -1.0, 1.0, -1.0]] * 5, dtype=DT)),
    "huber": lambda x: F.huber_loss(torch.sin(x) * 2, torch.zeros_like(x), delta=0.7, reduction="sum"),
}


@pytest.mark.parametrize("name", GRADIENTS)
def test_other_backward_op_gradients(name):
    """jacfwd of gradients whose reverse pass calls _cdist_backward, _pdist_backward,
    soft_margin_loss_backward, huber_loss_backward."""
    _assert_vmap_of_jacfwd_matches_loop(torch.func.grad(GRADIENTS[name]), _batched(5, 4, seed=5))
