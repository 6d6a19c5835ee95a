"""The optional C++ kernel of grid_sample's values-only tangent (formulas/_grid_sample_tangent.cpp).

`pip install -e .` builds `_grid_sample_tangent` beside this module when a C++ compiler is
there (setup.py); it registers torch.ops.torch_fwdad.grid_sample_tangent. Without it, under
a torch other than the release it was built against, or with TORCH_FWDAD_GRID_SAMPLE=python
in the environment, vision.py computes the tangent with PyTorch's kernels instead (same
values). `extension.info()` says which path runs and why; `extension.use_python()` switches
at run time (tests run both).
"""

from __future__ import annotations

import torch

from ..engine.extension import OptionalExtension

__all__: list[str] = []  # no helpers for derivatives.yaml formulas: vision.py calls this module

ENVIRONMENT_VARIABLE = "TORCH_FWDAD_GRID_SAMPLE"  # "python": never load the C++ kernel

# the kernel; `extension.active` is the switch (`extension.use_python()`, `extension.info()`)
extension = OptionalExtension(__package__, "_grid_sample_tangent", ENVIRONMENT_VARIABLE, "C++ grid-sample tangent")

DTYPES = (torch.float32, torch.float64)  # what the kernel computes in


def output_tangent(input, grid, input_t, grid_t, interpolation_mode, padding_mode, align_corners):
    """Σ_taps w·input_t + Σ_taps (Σ_d ∂w/∂x_d ẋ_d)·input in one pass (plain CPU tensors, values
    only; either tangent may be None)."""
    return torch.ops.torch_fwdad.grid_sample_tangent(input, grid, input_t, grid_t, interpolation_mode, padding_mode,
                                                     align_corners)
