"""End to end: torch.func.jvp, jacfwd and hessian (forward-over-reverse) through small nn models.

References are independent of forward mode: central finite differences for the JVP,
reverse mode (jacrev) for the Jacobian, reverse-over-reverse for the Hessian. Models in
training mode draw dropout masks and update running statistics, so there every call
runs under the same seed on a fresh copy of the model, and only reverse mode, which sees
the very same function, serves as reference.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torch_fwdad  # noqa: F401  (installs the forward rules)

DT = torch.float64
FD_EPS = 1e-6


def _seeded(model, seed=0):
    """fn(x) running a fresh copy of `model` under a fixed seed: the same function each call."""
    def fn(x):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return copy.deepcopy(model)(x)
    return fn


def mlp(train):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 6), nn.LayerNorm(6), nn.Tanh(), nn.Dropout(0.3),
        nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2),
    ).to(DT)
    model.train(train)
    if not train:  # non-trivial running statistics
        model[5].running_mean.uniform_(-0.5, 0.5)
        model[5].running_var.uniform_(0.5, 2.0)
    return _seeded(model), torch.randn(3, 4, dtype=DT)


def cnn(train=False):
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Tanh(),
        nn.Conv2d(2, 3, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2),
    ).to(DT).eval()
    return _seeded(model), torch.randn(1, 1, 4, 4, dtype=DT)


class CtcHead(nn.Module):
    """Acoustic frames -> per-frame log-probabilities over 3 symbols + blank -> CTC loss."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.targets = torch.tensor([[1, 2], [3, 3]])
        self.target_lengths = torch.tensor([2, 2])
        self.input_lengths = torch.tensor([5, 4])

    def forward(self, frames):  # (T, N, features)
        log_probs = F.log_softmax(torch.tanh(self.proj(frames)), dim=-1)
        return F.ctc_loss(log_probs, self.targets, self.input_lengths, self.target_lengths, reduction="sum")


def ctc_head(train=False):
    torch.manual_seed(2)
    return _seeded(CtcHead().to(DT)), torch.randn(5, 2, 3, dtype=DT)


class SpatialTransformer(nn.Module):
    """Localisation net -> affine_grid -> grid_sample -> linear head."""

    def __init__(self):
        super().__init__()
        self.loc = nn.Linear(2 * 4 * 4, 6)
        self.head = nn.Linear(2 * 3 * 3, 2)
        with torch.no_grad():  # near the identity transform
            self.loc.weight.mul_(0.1)
            self.loc.bias.copy_(torch.tensor([0.9, 0.1, 0.05, -0.1, 1.1, 0.0]))

    def forward(self, x):  # (1, 2, 4, 4)
        theta = self.loc(x.flatten(1)).view(-1, 2, 3)
        grid = F.affine_grid(theta, (x.shape[0], 2, 3, 3), align_corners=False)
        return self.head(F.grid_sample(x, grid, padding_mode="border", align_corners=False).flatten(1))


def spatial_transformer(train=False):
    torch.manual_seed(3)
    return _seeded(SpatialTransformer().to(DT)), torch.randn(1, 2, 4, 4, dtype=DT)


class BagScores(nn.Module):
    """Scores -> per_sample_weights of an EmbeddingBag (sum) -> linear head."""

    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(6, 4, mode="sum")
        self.head = nn.Linear(4, 2)
        self.indices, self.offsets = torch.tensor([0, 5, 5, 2, 1, 3]), torch.tensor([0, 3, 3])

    def forward(self, scores):  # (6,)
        bags = self.bag(self.indices, self.offsets, per_sample_weights=torch.sigmoid(scores))
        return self.head(torch.tanh(bags))


class BagTable(nn.Module):
    """The embedding table itself as input: EmbeddingBag (max, then mean) -> linear head."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 2)
        self.indices, self.offsets = torch.tensor([0, 5, 4, 2, 1, 3, 0]), torch.tensor([0, 3, 5])

    def forward(self, table):  # (6, 4)
        top = F.embedding_bag(self.indices, table, self.offsets, mode="max")
        mean = F.embedding_bag(self.indices, torch.sin(table), self.offsets, mode="mean")
        return self.head(torch.tanh(torch.cat([top, mean], dim=-1)))


def bag_scores(train=False):
    torch.manual_seed(4)
    return _seeded(BagScores().to(DT)), torch.randn(6, dtype=DT)


def bag_table(train=False):
    torch.manual_seed(5)
    return _seeded(BagTable().to(DT)), torch.randn(6, 4, dtype=DT)


def _scalar(fn):
    """A scalar objective of the model's output (CTC's is a loss already)."""
    def objective(x):
        out = fn(x)
        return (out ** 2).sum() if out.dim() else out
    return objective


MODELS = {
    "mlp_eval": lambda: mlp(train=False),
    "mlp_train": lambda: mlp(train=True),
    "cnn": cnn,
    "ctc_head": ctc_head,
    "spatial_transformer": spatial_transformer,
    "embedding_bag_scores": bag_scores,
    "embedding_bag_table": bag_table,
}
# PyTorch has no reverse mode through the embedding-bag backward ops or _ctc_loss_backward
# (not_implemented),
# so reverse-over-reverse cannot serve as reference there: central differences of the
# reverse-mode gradient do.
HESSIAN_BY_DIFFERENCES = {"embedding_bag_scores", "embedding_bag_table", "ctc_head"}


def _fd_hessian(f, x):
    grad = torch.func.grad(f)
    columns = []
    for k in range(x.numel()):
        step = torch.zeros(x.numel(), dtype=x.dtype)
        step[k] = FD_EPS
        step = step.reshape(x.shape)
        columns.append((grad(x + step) - grad(x - step)) / (2 * FD_EPS))
    return torch.stack(columns, dim=-1).reshape(*x.shape, *x.shape)


@pytest.mark.parametrize("name", MODELS)
def test_jvp(name):
    fn, x = MODELS[name]()
    tangent = torch.randn_like(x)
    _, jvp = torch.func.jvp(fn, (x,), (tangent,))
    if name.endswith("train"):
        expected = torch.func.vjp(fn, x)[1]  # <u, J t> == <J^T u, t> for random u
        u = torch.randn_like(jvp)
        torch.testing.assert_close((u * jvp).sum(), (expected(u)[0] * tangent).sum())
    else:
        expected = (fn(x + FD_EPS * tangent) - fn(x - FD_EPS * tangent)) / (2 * FD_EPS)
        torch.testing.assert_close(jvp, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_jacfwd_matches_jacrev(name):
    fn, x = MODELS[name]()
    torch.testing.assert_close(torch.func.jacfwd(fn, randomness="same")(x), torch.func.jacrev(fn)(x))


@pytest.mark.parametrize("name", MODELS)
def test_hessian_forward_over_reverse(name):
    fn, x = MODELS[name]()
    f = _scalar(fn)
    hessian = torch.func.jacfwd(torch.func.jacrev(f), randomness="same")(x)
    if name in HESSIAN_BY_DIFFERENCES:
        torch.testing.assert_close(hessian, _fd_hessian(f, x), atol=1e-6, rtol=1e-5)
    else:
        torch.testing.assert_close(hessian, torch.autograd.functional.hessian(f, x))
