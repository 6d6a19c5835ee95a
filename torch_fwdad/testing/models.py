"""Small torch.nn models that take the CPU inference fast paths, shared by the tests and the report.

Each builder returns (module in eval mode, example input, keyword arguments) in the
dtype asked for; FAST_PATH_KERNELS names the fused kernel each one reaches when nothing
requires grad (eval + no_grad, or parameters detached through functional_call).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["FAST_PATH_MODELS", "FAST_PATH_KERNELS", "SelfAttention", "kernels_called"]


class SelfAttention(nn.Module):
    """nn.MultiheadAttention called as self-attention, the case its fast path takes."""

    def __init__(self, embed_dim=8, num_heads=2, need_weights=False):
        super().__init__()
        self.attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x, key_padding_mask=None, attn_mask=None):
        out, weights = self.attention(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                      need_weights=self.need_weights)
        return out if weights is None else (out, weights)


def _padding_mask():
    return torch.tensor([[False] * 5, [False] * 3 + [True] * 2])


def _causal_mask():
    return torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)


def _encoder_layer(dtype, activation="relu", norm_first=False):
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, activation=activation, batch_first=True,
                                       norm_first=norm_first)
    return layer.to(dtype).eval()


def _models() -> dict[str, Callable[[torch.dtype], tuple]]:
    x = lambda dtype: torch.randn(2, 5, 8, dtype=dtype)  # noqa: E731
    return {
        "multihead_attention": lambda dt: (SelfAttention().to(dt).eval(), x(dt), {}),
        "multihead_attention_weights": lambda dt: (SelfAttention(need_weights=True).to(dt).eval(), x(dt), {}),
        "multihead_attention_padding_mask": lambda dt: (SelfAttention().to(dt).eval(), x(dt),
                                                        {"key_padding_mask": _padding_mask()}),
        "multihead_attention_causal_mask": lambda dt: (SelfAttention(need_weights=True).to(dt).eval(), x(dt),
                                                       {"attn_mask": _causal_mask()}),
        "encoder_layer_relu": lambda dt: (_encoder_layer(dt), x(dt), {}),
        "encoder_layer_gelu_norm_first": lambda dt: (_encoder_layer(dt, "gelu", True), x(dt), {}),
        "encoder_layer_padding_mask": lambda dt: (_encoder_layer(dt, "gelu"), x(dt),
                                                  {"src_key_padding_mask": _padding_mask()}),
        "encoder_causal": lambda dt: (nn.TransformerEncoder(_encoder_layer(dt), 2, enable_nested_tensor=False).eval(),
                                      x(dt), {"mask": _causal_mask()}),
        "lstm": lambda dt: (nn.LSTM(4, 6, 2, batch_first=True).to(dt).eval(), torch.randn(2, 3, 4, dtype=dt), {}),
        "lstm_bidirectional_no_bias": lambda dt: (nn.LSTM(4, 6, 1, bidirectional=True, bias=False).to(dt).eval(),
                                                  torch.randn(3, 2, 4, dtype=dt), {}),
    }


FAST_PATH_MODELS = _models()

_MHA = torch.ops.aten._native_multi_head_attention.default
_LAYER = torch.ops.aten._transformer_encoder_layer_fwd.default
_LSTM = torch.ops.aten.mkldnn_rnn_layer.default
# the LSTM kernel is float32-only: float64 LSTMs take the unfused path
FAST_PATH_KERNELS = {name: _LSTM if name.startswith("lstm") else _MHA if name.startswith("multihead") else _LAYER
                     for name in FAST_PATH_MODELS}


def kernels_called(fn, *args, **kwargs) -> set:
    """The aten overloads fn(*args, **kwargs) dispatches to (a TorchDispatchMode op list)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.add(func)
            return func(*args, **(kwargs or {}))

    with Record() as record:
        fn(*args, **kwargs)
    return record.seen
