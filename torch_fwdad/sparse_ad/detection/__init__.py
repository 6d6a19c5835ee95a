"""Detection stage: a function and a point in, a boolean (outputs, inputs) scipy CSR pattern out.

`numeric` samples Jacobians/Hessians at random points; `tracer` traces the function once with
the per-op dependency `rules`. Imports run rules -> tracer -> this module; detection imports
`inputs`, `products` and `patterns` below it and nothing from colouring or evaluation.
"""

from __future__ import annotations

import scipy.sparse as sp
import torch

from torch_fwdad.sparse_ad.detection.numeric import numeric_pattern
from torch_fwdad.sparse_ad.detection.tracer import structural_pattern
from torch_fwdad.sparse_ad.inputs import FlatInputs

__all__ = ["detect_hessian_pattern", "detect_pattern", "numeric_pattern", "structural_pattern"]


def detect_pattern(func, x, method="detect") -> sp.csr_array:
    if method == "detect-numeric":
        return numeric_pattern(func, x)
    return structural_pattern(func, x)


def detect_hessian_pattern(func, x, method="detect") -> sp.csr_array:
    """Hessian pattern: numerically from HVPs, or structurally as the Jacobian pattern of the gradient
    (tracing torch.func.grad of func, so the backward ops are traced too)."""
    if method == "detect-numeric":
        return numeric_pattern(func, x, hessian=True)
    inputs = FlatInputs.of(x)
    flat_func = inputs.flat_function(func)

    def gradient(flat):
        return torch.func.grad(lambda v: flat_func(v).reshape(()))(flat)
    return structural_pattern(gradient, inputs.flatten(x).detach())
