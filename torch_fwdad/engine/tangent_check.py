"""`check_tangent`: the one check every rule's output tangent passes, whoever wrote the rule;
`differentiable`: which tensors can have a tangent at all.

A leaf module (torch only): the engine's kernel checks register_jvp rules with it, and
custom_jvp (torch_fwdad.custom) checks its rules with it.
"""

from __future__ import annotations

import torch


def check_tangent(who: str, name: str, out, tangent) -> None:
    """Refuse a tangent that is not a Tensor matching its differentiable output `name`.

    Shared by register_jvp rules and custom_jvp rules; `who` names the rule in the message.
    """
    if not isinstance(tangent, torch.Tensor):
        raise RuntimeError(
            f"torch_fwdad: {who} returned a {type(tangent).__name__} "
            f"for output '{name}'; expected a Tensor or None"
        )
    if not isinstance(out, torch.Tensor) or not differentiable(out):
        raise RuntimeError(
            f"torch_fwdad: {who} returned a tangent for output "
            f"'{name}', which is not differentiable; return None for it"
        )
    if (tangent.shape != out.shape or tangent.dtype != out.dtype or tangent.device != out.device
            or tangent.layout != out.layout):
        raise RuntimeError(
            f"torch_fwdad: {who} returned a tangent of {_describe(tangent)} for output "
            f"'{name}', which has {_describe(out)}; a tangent must match its output"
        )


def _describe(tensor: torch.Tensor) -> str:
    layout = "" if tensor.layout == torch.strided else f", layout {tensor.layout}"
    return f"shape {tuple(tensor.shape)}, dtype {tensor.dtype}, device {tensor.device}{layout}"


def differentiable(tensor: torch.Tensor) -> bool:
    """Floating or complex: the dtypes autograd differentiates."""
    return tensor.is_floating_point() or tensor.is_complex()
