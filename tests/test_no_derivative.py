"""Inputs PyTorch's backward does not differentiate raise with a tangent, never drop it silently."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD

DT = torch.float64


def _positive(*shape):
    return torch.rand(*shape, dtype=DT) + 0.5


CASES = [
    ("igamma", lambda a, x: torch.igamma(a, x), "self"),
    ("igammac", lambda a, x: torch.igammac(a, x), "self"),
    ("special_zeta", lambda s, q: torch.special.zeta(s + 1.0, q), "self"),
    ("soft_margin_loss_backward", lambda x, y: torch.ops.aten.soft_margin_loss_backward(torch.ones(3, dtype=DT), x, y, 0), "target"),
]


@pytest.mark.parametrize("name, fn, argument", CASES, ids=[c[0] for c in CASES])
def test_tangent_on_undifferentiated_input_raises(name, fn, argument):
    first, second = _positive(3), _positive(3)
    with fwAD.dual_level():
        if argument == "self":
            first = fwAD.make_dual(first, torch.ones_like(first))
        else:
            second = fwAD.make_dual(second, torch.ones_like(second))
        with pytest.raises(NotImplementedError, match=f"derivative of {name} with respect to '{argument}'"):
            fn(first, second)


def test_reverse_mode_refuses_the_same_inputs():
    a = _positive(3).requires_grad_()
    with pytest.raises(NotImplementedError, match="igamma: input"):
        torch.igamma(a, _positive(3)).sum().backward()
