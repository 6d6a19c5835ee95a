"""Small pieces every family of formulas uses."""

from __future__ import annotations

import torch

__all__ = ["add_tangents", "zeros_if_none"]


def add_tangents(total: torch.Tensor | None, term: torch.Tensor) -> torch.Tensor:
    """Sum of per-input terms; the first term is taken as is (no zeros are made)."""
    return term if total is None else total + term


def zeros_if_none(tangent: torch.Tensor | None, primal: torch.Tensor) -> torch.Tensor:
    """For formulas that cannot skip a missing tangent term."""
    return torch.zeros_like(primal) if tangent is None else tangent
