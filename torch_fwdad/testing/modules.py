"""Every torch.nn module with parameters, as data: a small constructor and inputs for each.

Shared by the coverage report's module table (torch_fwdad/report/modules.py) and tests.
Sizes are small so a finite-difference check of one module takes milliseconds. Dropout is
0 everywhere (finite differences cannot judge a random function); normalization layers
with running statistics are warmed on one batch so eval mode does not see the identity.
`dtype` is float64 unless the module's CPU fast path exists only in float32 (mkldnn LSTM):
such a case is evaluated in float32 and judged against its float64 copy.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


def _call(module, *inputs, **kwargs):
    return module(*inputs, **kwargs)


@dataclass(frozen=True)
class ModuleCase:
    name: str  # the torch.nn class, or "Class.variant"
    family: str
    build: Callable[[], nn.Module]  # float32 parameters, as torch builds them; the caller casts
    shapes: tuple  # per positional input: a float shape (tuple) or a ready tensor maker (callable)
    forward: Callable = _call  # forward(module, *inputs): how the module is called
    dtype: torch.dtype = torch.float64
    note: str = ""
    # how the eval + no_grad column takes its JVP: "forward_ad" where torch.func cannot run
    # the module's eval path (nested tensors)
    eval_via: str = "torch.func"

    def inputs(self, dtype: torch.dtype, generator: torch.Generator) -> list:
        """Fresh inputs: float tensors in `dtype` for shapes, the rest from their makers."""
        return [torch.randn(spec, dtype=dtype, generator=generator) if isinstance(spec, tuple) else spec(generator)
                for spec in self.shapes]

    def module(self, dtype: torch.dtype) -> nn.Module:
        torch.manual_seed(0)  # parameters are random: the same case builds the same module
        return self.build().to(dtype)


def _indices(high: int, *shape: int):
    return lambda generator: torch.randint(0, high, shape, generator=generator)


def _constant(tensor: torch.Tensor):
    return lambda generator: tensor.clone()


def _lazy(module: nn.Module, *shape: int) -> nn.Module:
    """A lazy module materialized by a first call, as users meet it after their first batch."""
    with torch.no_grad():
        module(torch.randn(*shape))
    return module


def _warmed(module: nn.Module, *shape: int) -> nn.Module:
    """Running statistics of one training batch: eval mode then normalizes by something."""
    with torch.no_grad():
        module.train()(torch.randn(*shape) * 2 + 1)
    return module


def _self_attention(module, x):
    # query is key is value, batch_first, need_weights=False: nn.MultiheadAttention's fast
    # path (aten::_native_multi_head_attention) in eval + no_grad
    return module(x, x, x, need_weights=False)[0]


def _encoder_with_padding(module, x):
    # a padding mask with enable_nested_tensor: aten::_nested_tensor_from_mask in eval + no_grad
    mask = torch.tensor([[False, False, False, True, True], [False, False, False, False, True]])
    return module(x, src_key_padding_mask=mask)


def _encoder_layer(**overrides):
    return nn.TransformerEncoderLayer(**{**dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True),
                                         **overrides})


def _decoder_layer():
    return nn.TransformerDecoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)


def _deprecated_weight_norm():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.nn.utils.weight_norm is deprecated, still used
        return nn.utils.weight_norm(nn.Conv1d(2, 3, 3))


_BAG_OFFSETS = torch.tensor([0, 2, 5])

MODULES: tuple[ModuleCase, ...] = (
    # linear
    ModuleCase("Linear", "linear", lambda: nn.Linear(4, 3), ((2, 4),)),
    ModuleCase("Bilinear", "linear", lambda: nn.Bilinear(3, 4, 2), ((2, 3), (2, 4))),
    ModuleCase("LazyLinear", "linear", lambda: _lazy(nn.LazyLinear(3), 2, 4), ((2, 4),)),
    ModuleCase("LinearCrossEntropyLoss", "linear", lambda: nn.LinearCrossEntropyLoss(8, 5), ((6, 8), _indices(5, 6))),
    ModuleCase("AdaptiveLogSoftmaxWithLoss", "linear", lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4], div_value=2.0),
               ((6, 8), _indices(10, 6))),
    ModuleCase("PReLU", "activation", lambda: nn.PReLU(3), ((2, 3, 4),)),
    # convolution
    ModuleCase("Conv1d", "convolution", lambda: nn.Conv1d(2, 3, 3), ((2, 2, 5),)),
    ModuleCase("Conv2d", "convolution", lambda: nn.Conv2d(2, 3, 3), ((1, 2, 5, 5),)),
    ModuleCase("Conv3d", "convolution", lambda: nn.Conv3d(2, 2, 2), ((1, 2, 3, 3, 3),)),
    ModuleCase("ConvTranspose1d", "convolution", lambda: nn.ConvTranspose1d(2, 3, 3), ((2, 2, 4),)),
    ModuleCase("ConvTranspose2d", "convolution", lambda: nn.ConvTranspose2d(2, 3, 3), ((1, 2, 3, 3),)),
    ModuleCase("ConvTranspose3d", "convolution", lambda: nn.ConvTranspose3d(2, 2, 2), ((1, 2, 2, 2, 2),)),
    ModuleCase("LazyConv1d", "convolution", lambda: _lazy(nn.LazyConv1d(3, 3), 2, 2, 5), ((2, 2, 5),)),
    ModuleCase("LazyConv2d", "convolution", lambda: _lazy(nn.LazyConv2d(3, 3), 1, 2, 5, 5), ((1, 2, 5, 5),)),
    ModuleCase("LazyConv3d", "convolution", lambda: _lazy(nn.LazyConv3d(2, 2), 1, 2, 3, 3, 3), ((1, 2, 3, 3, 3),)),
    ModuleCase("LazyConvTranspose1d", "convolution", lambda: _lazy(nn.LazyConvTranspose1d(3, 3), 2, 2, 4), ((2, 2, 4),)),
    ModuleCase("LazyConvTranspose2d", "convolution", lambda: _lazy(nn.LazyConvTranspose2d(3, 3), 1, 2, 3, 3),
               ((1, 2, 3, 3),)),
    ModuleCase("LazyConvTranspose3d", "convolution", lambda: _lazy(nn.LazyConvTranspose3d(2, 2), 1, 2, 2, 2, 2),
               ((1, 2, 2, 2, 2),)),
    # normalization
    ModuleCase("BatchNorm1d", "normalization", lambda: _warmed(nn.BatchNorm1d(3), 4, 3), ((4, 3),)),
    ModuleCase("BatchNorm2d", "normalization", lambda: _warmed(nn.BatchNorm2d(3), 2, 3, 3, 3), ((2, 3, 3, 3),)),
    ModuleCase("BatchNorm3d", "normalization", lambda: _warmed(nn.BatchNorm3d(2), 2, 2, 2, 2, 2), ((2, 2, 2, 2, 2),)),
    ModuleCase("LazyBatchNorm1d", "normalization", lambda: _warmed(nn.LazyBatchNorm1d(), 4, 3), ((4, 3),)),
    ModuleCase("LazyBatchNorm2d", "normalization", lambda: _warmed(nn.LazyBatchNorm2d(), 2, 3, 3, 3), ((2, 3, 3, 3),)),
    ModuleCase("LazyBatchNorm3d", "normalization", lambda: _warmed(nn.LazyBatchNorm3d(), 2, 2, 2, 2, 2),
               ((2, 2, 2, 2, 2),)),
    ModuleCase("SyncBatchNorm", "normalization", lambda: _warmed(nn.SyncBatchNorm(3), 4, 3), ((4, 3),),
               note="no process group: batch norm of the local batch"),
    ModuleCase("InstanceNorm1d", "normalization", lambda: nn.InstanceNorm1d(3, affine=True), ((2, 3, 5),)),
    ModuleCase("InstanceNorm2d", "normalization", lambda: nn.InstanceNorm2d(3, affine=True), ((2, 3, 4, 4),)),
    ModuleCase("InstanceNorm3d", "normalization", lambda: nn.InstanceNorm3d(2, affine=True), ((1, 2, 3, 3, 3),)),
    ModuleCase("LazyInstanceNorm1d", "normalization", lambda: _lazy(nn.LazyInstanceNorm1d(affine=True), 2, 3, 5),
               ((2, 3, 5),)),
    ModuleCase("LazyInstanceNorm2d", "normalization", lambda: _lazy(nn.LazyInstanceNorm2d(affine=True), 2, 3, 4, 4),
               ((2, 3, 4, 4),)),
    ModuleCase("LazyInstanceNorm3d", "normalization", lambda: _lazy(nn.LazyInstanceNorm3d(affine=True), 1, 2, 3, 3, 3),
               ((1, 2, 3, 3, 3),)),
    ModuleCase("LayerNorm", "normalization", lambda: nn.LayerNorm(4), ((2, 3, 4),)),
    ModuleCase("GroupNorm", "normalization", lambda: nn.GroupNorm(2, 4), ((2, 4, 3),)),
    ModuleCase("RMSNorm", "normalization", lambda: nn.RMSNorm(4), ((2, 3, 4),)),
    # weight normalization: parameters reparametrized (_weight_norm_interface on CPU)
    ModuleCase("utils.weight_norm(Conv1d)", "weight normalization", _deprecated_weight_norm, ((2, 2, 5),)),
    ModuleCase("parametrizations.weight_norm(Linear)", "weight normalization",
               lambda: nn.utils.parametrizations.weight_norm(nn.Linear(4, 3)), ((2, 4),)),
    # embedding
    ModuleCase("Embedding", "embedding", lambda: nn.Embedding(10, 3), (_indices(10, 2, 4),)),
    ModuleCase("EmbeddingBag", "embedding", lambda: nn.EmbeddingBag(10, 3, mode="sum"),
               (_indices(10, 6), _constant(_BAG_OFFSETS), (6,)),
               forward=lambda m, indices, offsets, weights: m(indices, offsets, per_sample_weights=weights)),
    ModuleCase("EmbeddingBag.max", "embedding", lambda: nn.EmbeddingBag(10, 3, mode="max"),
               (_indices(10, 6), _constant(_BAG_OFFSETS))),
    # recurrent
    ModuleCase("RNN", "recurrent", lambda: nn.RNN(3, 4, num_layers=2), ((5, 2, 3),)),
    ModuleCase("LSTM", "recurrent", lambda: nn.LSTM(3, 4, num_layers=2), ((5, 2, 3),)),
    ModuleCase("LSTM.float32", "recurrent", lambda: nn.LSTM(3, 4, num_layers=2), ((5, 2, 3),), dtype=torch.float32,
               note="float32: CPU's mkldnn LSTM (mkldnn_rnn_layer), judged against its float64 copy"),
    ModuleCase("GRU", "recurrent", lambda: nn.GRU(3, 4, num_layers=2), ((5, 2, 3),)),
    ModuleCase("RNNCell", "recurrent", lambda: nn.RNNCell(3, 4), ((2, 3),)),
    ModuleCase("LSTMCell", "recurrent", lambda: nn.LSTMCell(3, 4), ((2, 3),)),
    ModuleCase("GRUCell", "recurrent", lambda: nn.GRUCell(3, 4), ((2, 3),)),
    # attention and transformers (batch_first, no dropout: the CPU fast paths in eval + no_grad)
    ModuleCase("MultiheadAttention", "transformer", lambda: nn.MultiheadAttention(8, 2, batch_first=True), ((2, 5, 8),),
               forward=_self_attention),
    ModuleCase("TransformerEncoderLayer", "transformer", _encoder_layer, ((2, 5, 8),)),
    ModuleCase("TransformerEncoder", "transformer", lambda: nn.TransformerEncoder(_encoder_layer(), 2,
                                                                                   enable_nested_tensor=False),
               ((2, 5, 8),)),
    ModuleCase("TransformerEncoder.padding_mask", "transformer",
               lambda: nn.TransformerEncoder(_encoder_layer(), 2, enable_nested_tensor=True), ((2, 5, 8),),
               forward=_encoder_with_padding, eval_via="forward_ad"),
    ModuleCase("TransformerDecoderLayer", "transformer", _decoder_layer, ((2, 4, 8), (2, 5, 8))),
    ModuleCase("TransformerDecoder", "transformer", lambda: nn.TransformerDecoder(_decoder_layer(), 2),
               ((2, 4, 8), (2, 5, 8))),
    ModuleCase("Transformer", "transformer",
               lambda: nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                                      dim_feedforward=16, dropout=0.0, batch_first=True),
               ((2, 5, 8), (2, 4, 8))),
)

MODULE_CASES: dict[str, ModuleCase] = {case.name: case for case in MODULES}

# Classes of torch.nn that create parameters but are no user-facing layer of their own.
NOT_LAYERS = {
    "RNNBase": "base class of RNN, LSTM and GRU",
    "RNNCellBase": "base class of RNNCell, LSTMCell and GRUCell",
    "ParameterList": "a container of parameters the user fills; no computation",
    "ParameterDict": "a container of parameters the user fills; no computation",
}


def creates_parameters(cls) -> bool:
    """Whether a torch.nn class, or a torch.nn base it inherits, builds a Parameter in its source."""
    for klass in cls.__mro__:
        if klass is nn.Module or not klass.__module__.startswith("torch.nn"):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if "Parameter(" in source or "UninitializedParameter" in source:
            return True
    return False


def torch_nn_classes_with_parameters() -> list[str]:
    """torch.nn's module classes that create parameters themselves (composites such as
    nn.Transformer hold other modules' parameters and are listed in MODULES by hand)."""
    return sorted(name for name in dir(nn) if inspect.isclass(getattr(nn, name))
                  and issubclass(getattr(nn, name), nn.Module) and creates_parameters(getattr(nn, name)))
