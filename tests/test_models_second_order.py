"""Hessian-vector products through models, against central differences of the gradient.

Forward-over-reverse reads every tensor the backward saved, outputs included: an output
the backward reads but the forward rule leaves without a tangent makes the HVP silently
wrong (weight norm's norms did). Finite differences of the reverse-mode gradient are the
independent reference; parameters are differentiated through torch.func.functional_call.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import torch_fwdad  # noqa: F401  (installs the forward rules)
from torch_fwdad.testing.models import kernels_called

# the first two models use the deprecated torch.nn.utils.weight_norm on purpose: it is
# what Wav2Vec2's positional convolution still calls
pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.* is deprecated:FutureWarning")

DT = torch.float64
FD_EPS = 1e-6


def _hvp_and_differences(loss, params):
    """(HVP by jvp of grad, central differences of grad) along a random direction."""
    direction = {k: torch.randn_like(v) for k, v in params.items()}
    grad = torch.func.grad(loss)
    _, hvp = torch.func.jvp(grad, (params,), (direction,))
    shifted = [grad({k: v + sign * FD_EPS * direction[k] for k, v in params.items()}) for sign in (1, -1)]
    differences = {k: (shifted[0][k] - shifted[1][k]) / (2 * FD_EPS) for k in params}
    return hvp, differences


def _weight_norm_linear():
    return nn.utils.weight_norm(nn.Linear(4, 3).to(DT))


def _weight_norm_conv_last_dim():
    return nn.utils.weight_norm(nn.Conv1d(2, 3, 3).to(DT), dim=2)


def _parametrized_weight_norm():
    return nn.utils.parametrizations.weight_norm(nn.Linear(4, 3).to(DT))


def _inputs(model):
    return torch.randn(2, 4, dtype=DT) if isinstance(model, nn.Linear) else torch.randn(2, 2, 5, dtype=DT)


WEIGHT_NORM = {
    "linear": _weight_norm_linear,
    "conv1d_last_dim": _weight_norm_conv_last_dim,
    "parametrizations": _parametrized_weight_norm,
}


@pytest.mark.parametrize("name", WEIGHT_NORM)
def test_weight_norm_hvp_wrt_parameters(name):
    torch.manual_seed(0)
    model = WEIGHT_NORM[name]()
    x = _inputs(model)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p):
        return (torch.func.functional_call(model, p, (x,)).sin() ** 2).sum()

    hvp, differences = _hvp_and_differences(loss, params)
    for key in params:
        torch.testing.assert_close(hvp[key], differences[key], atol=1e-6, rtol=1e-5, msg=lambda m: f"{key}: {m}")


def test_weight_norm_kernel_reached():
    """The models above run _weight_norm_interface, the kernel whose rule is checked."""
    for build in WEIGHT_NORM.values():
        model = build()
        assert torch.ops.aten._weight_norm_interface.default in kernels_called(model, _inputs(model))
