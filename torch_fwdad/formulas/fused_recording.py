"""The intermediates a fused CPU kernel computes on the way, kept as it computes them.

_transformer_encoder_layer_fwd and _native_multi_head_attention return only their output,
yet a tangent needs what they computed inside: q, k, v, the attention probabilities, the
layer norms' statistics, the feed-forward activation. Their CPU kernels call other aten
ops through the dispatcher, below autograd, so a TorchDispatchMode pushed around the
kernel's call sees each inner call. `Recording` runs every call unchanged (the output
stays bitwise the kernel's own) and keeps the tensors named below, so a rule need not
compute the primal a second time.

The kernels reuse buffers (attention's output is written over q, GELU over its input): a
kept tensor about to be written over by an inner call is copied first, so what is kept
is what the kernel had computed at that point. Which ops the kernels call is an
implementation detail of ATen: a rule checks the recording is complete (`complete`) and
otherwise computes the intermediates itself.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["Recording", "can_record"]

_aten = torch.ops.aten
# Ops whose own inner calls matter: run on their CPU kernel with the mode still pushed
# (inside __torch_dispatch__ the mode is popped, so a plain call would hide their insides).
# Below autograd the mode sees layer_norm itself, before it decomposes into native_layer_norm.
_LOOK_INSIDE = frozenset({_aten._transformer_encoder_layer_fwd.default, _aten._native_multi_head_attention.default,
                          _aten._addmm_activation.default, _aten.layer_norm.default})
_CPU = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
_SOFTMAX = frozenset({_aten._softmax.default, _aten._softmax.out, _aten._masked_softmax.default})
_BMM = frozenset({_aten.bmm.default, _aten.bmm.out})
_GELU = frozenset({_aten.gelu_.default, _aten.gelu.default})


def can_record(*tensors) -> bool:
    """Whether a Recording sees the kernel's inner calls as traced on ATen's CPU kernels:
    dense CPU tensors that are not subclasses dispatching through Python (fake tensors,
    tracing wrappers), and no other dispatch mode (tracing) active. (torch.func's own
    wrappers reach the kernel unwrapped.)"""
    if torch._C._len_torch_dispatch_stack() != 0:
        return False
    return all(t is None or _plain_cpu(t) for t in tensors)


def _plain_cpu(t: torch.Tensor) -> bool:
    return (t.device.type == "cpu" and t.layout == torch.strided and not t.is_nested
            and not torch._C._dispatch_keys(t).has(_PYTHON))


_PYTHON = torch._C.DispatchKey.Python


class Recording(TorchDispatchMode):
    """Kept, in call order:

    qkv          (q, k, v) of each attention, (B, H, T, E), q scaled by 1/√E
                 (_transform_bias_rescale_qkv)
    probs        its softmax probabilities (B, H, T, T) (_softmax / _masked_softmax)
    contexts     probs @ v, the first batched matmul after each softmax, (B·H, T, E)
    layer_norms  (input, output, mean, rstd) of each native_layer_norm
    hidden       each feed-forward activation, after the activation (_addmm_activation)
    gelu_inputs  the input of each GELU inside _addmm_activation
    """

    def __init__(self):
        super().__init__()
        self.kept = {"qkv": [], "probs": [], "contexts": [], "layer_norms": [], "hidden": [], "gelu_inputs": []}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _GELU:
            self.kept["gelu_inputs"].append(args[0])
        for written in _written_arguments(func, args, kwargs):
            self._copy_kept_sharing(written)
        if func in _LOOK_INSIDE:
            with self:
                out = func.redispatch(_CPU, *args, **kwargs)
        else:
            out = func(*args, **kwargs)
        self._keep(func, args, out)
        return out

    def _keep(self, func, args, out):
        kept = self.kept
        if func is _aten._transform_bias_rescale_qkv.default:
            kept["qkv"].append(tuple(out))
        elif func in _SOFTMAX:
            kept["probs"].append(out)
        elif func in _BMM and len(kept["contexts"]) < len(kept["probs"]):
            kept["contexts"].append(out)
        elif func is _aten.native_layer_norm.default:
            kept["layer_norms"].append((args[0], *out))
        elif func is _aten._addmm_activation.default:
            kept["hidden"].append(out)

    def _copy_kept_sharing(self, written: torch.Tensor) -> None:
        storage = written.untyped_storage().data_ptr()
        for name, entries in self.kept.items():
            self.kept[name] = [_copied_if_sharing(entry, storage) for entry in entries]

    def complete(self, **counts: int) -> bool:
        """Whether exactly `counts[name]` entries were kept under each name given."""
        return all(len(self.kept[name]) == count for name, count in counts.items())


def _copied_if_sharing(entry, storage: int):
    if isinstance(entry, tuple):
        return tuple(_copied_if_sharing(t, storage) for t in entry)
    return entry.clone() if entry.untyped_storage().data_ptr() == storage else entry


_written_positions: dict = {}


def _written_arguments(func, args, kwargs):
    """The tensors `func` writes into (in-place and out= arguments), from its schema."""
    positions = _written_positions.get(func)
    if positions is None:
        positions = _written_positions[func] = tuple(
            (i, a.name) for i, a in enumerate(func._schema.arguments) if a.alias_info is not None and a.alias_info.is_write)
    for i, name in positions:
        value = args[i] if i < len(args) else kwargs.get(name)
        if isinstance(value, torch.Tensor):
            yield value
