"""_foreach_* overloads without an upstream forward formula: one tangent per list element."""

from __future__ import annotations

import torch

__all__ = ["foreach_mm_jvp", "foreach_pow_scalar_base_jvp"]


def foreach_mm_jvp(self, self_t, mat2, mat2_t):
    """(A_i B_i)' = dA_i B_i + A_i dB_i, skipping elements that carry no tangent."""
    self_t = self_t or [None] * len(self)
    mat2_t = mat2_t or [None] * len(mat2)
    return [_product_tangent(a, da, b, db) for a, da, b, db in zip(self, self_t, mat2, mat2_t)]


def _product_tangent(a, da, b, db):
    terms = [t for t in (None if da is None else da @ b, None if db is None else a @ db) if t is not None]
    return sum(terms[1:], terms[0]) if terms else None


def foreach_pow_scalar_base_jvp(base, exponent, exponent_t, result):
    """(base ** e)' = base ** e · log(base) · de per element.

    As pow_backward_exponent: a zero base gives 0 where the exponent's real part is >= 0
    (and it is real), instead of 0 · log 0 = nan.
    """
    return [None if de is None else de * _pow_exponent_slope(base, e, r)
            for e, de, r in zip(exponent, exponent_t, result)]


def _pow_exponent_slope(base, exponent, result):
    log_base = torch.log(torch.tensor(base, dtype=result.dtype, device=result.device))
    slope = result * log_base
    if base != 0:
        return slope
    nonnegative = (exponent.real >= 0) & (exponent.imag == 0) if exponent.is_complex() else exponent >= 0
    return torch.where(nonnegative, torch.zeros((), dtype=slope.dtype, device=slope.device), slope)
