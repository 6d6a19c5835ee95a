"""Fake quantisation (quantisation-aware training): straight-through estimator."""

from __future__ import annotations

import torch

__all__ = ["straight_through_jvp"]


def straight_through_jvp(self_t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The tangent passes where the value was not clamped, as in the backward formulas.

    Rounding is treated as the identity (the straight-through estimator), so the tangent
    is deliberately not the derivative of the piecewise-constant primal.
    """
    return self_t * mask
