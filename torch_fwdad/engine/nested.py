"""Tangents of nested tensors, which PyTorch cannot make dual.

`_make_dual` on a nested tensor fails ("NestedTensorImpl doesn't support sizes"), yet
nn.TransformerEncoder builds one from src_key_padding_mask in eval mode, runs its layers'
fused kernel on it and pads the result back. So a rule whose output is nested hands its
tangent to the engine, which keeps it beside that tensor and gives it to the next rule as
the tangent of that argument. The tangent is dense, in the layout of
`to_padded_tensor(0.)` (batch, longest sizes...) and zero past each component's end.

It is kept as the forward grad of a dense carrier at the same level, so PyTorch drops it
when the level exits, as it drops every tangent of that level.

Only rules read a kept tangent: an op without one, given such a nested tensor, returns a
result without it. So while a nested tensor with a kept tangent is alive (on
nn.TransformerEncoder's path: until to_padded_tensor ends it), a nested tensor reaching a
rule without its tangent is refused as dropped, not read as zero.
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
    """The padded tangent kept for `nested` at `level`, or None; raises when nested tangents
    are live at `level` and `nested` has none (an op without a rule dropped it)."""
    carrier = _carriers.get(nested)
    tangent = None if carrier is None else _unpack_dual(carrier, level)[1]
    if tangent is None and _tangents_live(level):
        raise RuntimeError(
            "torch_fwdad: a nested tensor reached a forward-mode rule without its tangent: an op on "
            "nn.TransformerEncoder's nested path (src_key_padding_mask in eval mode) dropped it. Only the "
            "layers' fused kernel (_transformer_encoder_layer_fwd) and to_padded_tensor carry a nested "
            "tensor's tangent; a layer that leaves the fused path must not be used there: build the "
            "encoder with enable_nested_tensor=False"
        )
    return tangent


def _tangents_live(level: int) -> bool:
    """Whether a nested tensor with a tangent at `level` is alive (few are: the encoder path
    holds one at a time)."""
    return any(_unpack_dual(carrier, level)[1] is not None for carrier in list(_carriers.values()))


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
