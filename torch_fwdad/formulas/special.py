"""Special functions: incomplete gamma, Hurwitz zeta, reparameterised gamma samples."""

from __future__ import annotations

import torch

__all__ = ["gamma_density", "zeta_q_derivative"]


def gamma_density(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x^(a-1) e^(-x) / Γ(a): d/dx of the regularised lower incomplete gamma P(a, x).

    Written in logs as PyTorch's igamma backward does, so large a and x do not overflow.
    """
    return torch.exp((a - 1) * torch.log(x) - x - torch.lgamma(a))


def zeta_q_derivative(s, q: torch.Tensor) -> torch.Tensor:
    """d/dq ζ(s, q) = -s ζ(s + 1, q), for a Tensor or a Python number s."""
    return -s * torch.special.zeta(s + 1.0, q)
