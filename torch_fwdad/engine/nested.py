"""Tangents of nested tensors, which PyTorch cannot make dual.

`_make_dual` on a nested tensor fails ("NestedTensorImpl doesn't support sizes"), yet
nn.TransformerEncoder builds one from src_key_padding_mask in eval mode, runs its layers'
fused kernel on it and pads the result back. So a rule whose output is nested hands its
tangent to the engine, which keeps it beside that tensor and gives it to the next rule as
the tangent of that argument. The tangent is dense, in the layout of
`to_padded_tensor(0.)` (batch, longest sizes...) and zero past each component's end.

It is kept as the forward grad of a dense carrier at the same level, so PyTorch drops it
when the level exits, as it drops every tangent of that level.
"""

from __future__ import annotations

import torch
from torch.utils.weak import WeakTensorKeyDictionary

_carriers = WeakTensorKeyDictionary()
_make_dual = torch._C._VariableFunctions._make_dual
_unpack_dual = torch._C._VariableFunctions._unpack_dual


def padded_shape(nested: torch.Tensor) -> tuple[int, ...]:
    """The shape of nested.to_padded_tensor(padding): the batch, then each dim's largest size."""
    sizes = nested._nested_tensor_size()
    longest = sizes.amax(0).tolist() if sizes.numel() else [0] * sizes.shape[-1]
    return (sizes.shape[0], *longest)


def nested_tangent(nested: torch.Tensor, level: int):
    """The padded tangent kept for `nested` at `level`, or None."""
    carrier = _carriers.get(nested)
    return None if carrier is None else _unpack_dual(carrier, level)[1]


def keep_nested_tangent(who: str, name: str, nested: torch.Tensor, tangent, level: int) -> None:
    if not isinstance(tangent, torch.Tensor) or tangent.is_nested or tangent.dtype != nested.dtype \
            or tuple(tangent.shape) != padded_shape(nested):
        got = type(tangent).__name__ if not isinstance(tangent, torch.Tensor) else f"shape {tuple(tangent.shape)}, dtype {tangent.dtype}"
        raise RuntimeError(
            f"torch_fwdad: {who} returned a tangent of {got} for the nested output '{name}'; a nested "
            f"tensor's tangent is dense, shaped as to_padded_tensor gives it: {padded_shape(nested)}, "
            f"dtype {nested.dtype}"
        )
    _carriers[nested] = _make_dual(tangent, tangent, level)
