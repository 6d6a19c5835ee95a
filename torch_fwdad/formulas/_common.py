"""Small pieces every family of formulas uses."""

from __future__ import annotations

import torch

__all__ = ["add_tangents", "sum_tangents", "zeros_if_none"]


def add_tangents(total: torch.Tensor | None, term: torch.Tensor) -> torch.Tensor:
    """Sum of per-input terms; the first term is taken as is (no zeros are made)."""
    return term if total is None else total + term


def sum_tangents(*terms: torch.Tensor | None) -> torch.Tensor | None:
    """Sum of the terms present; None when every term is absent (a zero tangent)."""
    total = None
    for term in terms:
        if term is not None:
            total = add_tangents(total, term)
    return total


def zeros_if_none(tangent: torch.Tensor | None, primal: torch.Tensor) -> torch.Tensor:
    """For formulas that cannot skip a missing tangent term."""
    return torch.zeros_like(primal) if tangent is None else tangent
