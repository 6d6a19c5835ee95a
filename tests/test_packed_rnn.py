"""End to end: forward mode through nn.utils.rnn.pack_padded_sequence -> LSTM/GRU (CPU).

_pack_padded_sequence has no forward formula upstream; torch_fwdad's rule packs the
tangent like the primal. The rest of the path (lstm.data / gru.data decomposing into
cells, pad_packed_sequence) has torch's own formulas. Reference: central finite
differences, and <u, J t> == <J^T u, t> against reverse mode.

torch.func (functorch) cannot run an RNN on a PackedSequence at all in torch 2.13, in
reverse mode just as in forward mode: it wraps the integer batch_sizes output of
_pack_padded_sequence, and the RNN kernel then reads its data pointer ("Cannot access
data pointer of Tensor that doesn't have storage"). That is pinned below (strict xfail
for torch.func.jvp, and torch.func.grad failing the same way without forward AD), so the
end-to-end forward check uses torch.autograd.forward_ad, which works.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

import torch_fwdad  # noqa: F401  (installs the forward rules)

DT = torch.float64
FD_EPS = 1e-6


class PackedRNN(nn.Module):
    """Padded batch -> pack_padded_sequence -> 2-layer LSTM/GRU -> pad_packed_sequence -> head."""

    def __init__(self, cell, batch_first, lengths, enforce_sorted):
        super().__init__()
        self.rnn = cell(3, 4, num_layers=2, batch_first=batch_first)
        self.head = nn.Linear(4, 2)
        self.batch_first, self.lengths, self.enforce_sorted = batch_first, lengths, enforce_sorted

    def forward(self, padded):
        packed = nn.utils.rnn.pack_padded_sequence(
            padded, self.lengths, batch_first=self.batch_first, enforce_sorted=self.enforce_sorted)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=self.batch_first, total_length=4)
        return self.head(out)


CASES = {
    # (cell, batch_first, lengths, enforce_sorted)
    "lstm_time_first_unequal_unsorted": (nn.LSTM, False, [2, 4, 1], False),
    "lstm_batch_first_equal": (nn.LSTM, True, [4, 4, 4], True),
    "gru_batch_first_unequal_unsorted": (nn.GRU, True, [3, 1, 4], False),
    "gru_time_first_unequal_sorted": (nn.GRU, False, [4, 2, 2], True),
}


def _model(name):
    cell, batch_first, lengths, enforce_sorted = CASES[name]
    torch.manual_seed(0)
    model = PackedRNN(cell, batch_first, torch.tensor(lengths), enforce_sorted).to(DT).eval()
    x = torch.randn((3, 4, 3) if batch_first else (4, 3, 3), dtype=DT)
    return model, x


def _forward_ad_jvp(fn, x, t):
    with fwAD.dual_level():
        out = fn(fwAD.make_dual(x, t))
        return fwAD.unpack_dual(out).tangent


@pytest.mark.parametrize("name", CASES)
def test_jvp_matches_finite_differences(name):
    model, x = _model(name)
    t = torch.randn_like(x)
    jvp = _forward_ad_jvp(model, x, t)
    with torch.no_grad():
        expected = (model(x + FD_EPS * t) - model(x - FD_EPS * t)) / (2 * FD_EPS)
    torch.testing.assert_close(jvp, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_jvp_matches_vjp(name):
    model, x = _model(name)
    t = torch.randn_like(x)
    jvp = _forward_ad_jvp(model, x, t)
    u = torch.randn_like(jvp)
    xr = x.clone().requires_grad_()
    (vjp,) = torch.autograd.grad(model(xr), xr, u)
    torch.testing.assert_close((u * jvp).sum(), (vjp * t).sum())


def test_padding_gets_no_tangent():
    # positions past a sequence's length are padding: pad_packed_sequence fills zeros
    model, x = _model("lstm_time_first_unequal_unsorted")
    packed_t = _forward_ad_jvp(
        lambda p: nn.utils.rnn.pad_packed_sequence(
            nn.utils.rnn.pack_padded_sequence(p, model.lengths, enforce_sorted=False))[0], x, torch.ones_like(x))
    for b, length in enumerate(model.lengths.tolist()):
        assert torch.all(packed_t[:length, b] == 1) and torch.all(packed_t[length:, b] == 0)


_FUNCTORCH_PACKED = (
    "torch.func cannot run an RNN on a PackedSequence in torch 2.13 (reverse mode neither): it wraps "
    "the integer batch_sizes and the RNN kernel reads its data pointer")


@pytest.mark.xfail(strict=True, raises=RuntimeError, reason=_FUNCTORCH_PACKED)
def test_torch_func_jvp():
    model, x = _model("lstm_batch_first_equal")
    torch.func.jvp(model, (x,), (torch.randn_like(x),))


def test_torch_func_reverse_mode_fails_the_same_way_upstream():
    model, x = _model("lstm_batch_first_equal")
    with pytest.raises(RuntimeError, match="doesn't have storage"):
        torch.func.grad(lambda x: model(x).sum())(x)
