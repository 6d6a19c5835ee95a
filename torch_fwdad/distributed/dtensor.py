"""Forward mode on DTensor: one op handler and the jvp of DTensor's own autograd.Functions.

- `aten._has_same_storage_numel` (asked by `make_dual`) returns a bool, which
  `register_sharding` cannot express (it requires an output placement), so it goes where
  DTensor keeps its own handlers for bool-valued ops (`is_same_size`): `_custom_op_handlers`.
- `DTensor.from_local`, `to_local` and `redistribute` are autograd.Functions without `jvp`;
  each gets one that applies the same Function to the tangent, synchronously. Their
  `forward` is wrapped only to remember its arguments for that.
All of it is undone by torch_fwdad.disable().
"""

from __future__ import annotations

import torch
from torch.distributed.tensor import DTensor
from torch.distributed.tensor import _api as dtensor_api
from torch.distributed.tensor import _redistribute

from .switches import AttributeSwitch, switch

aten = torch.ops.aten


def has_same_storage_numel(op_call, args, kwargs) -> bool:
    primal, tangent = args
    if primal.placements == tangent.placements:
        return op_call(primal._local_tensor, tangent._local_tensor)
    # Different placements: the shards differ; the tangent is kept as given (DTensor ops
    # redistribute as needed), so it only has to match the global metadata.
    return primal.shape == tangent.shape and primal.stride() == tangent.stride()


class DictEntrySwitch:
    """One entry of a dict owned by PyTorch (DTensor's handlers); restores what was there."""

    _MISSING = object()

    def __init__(self, mapping: dict, key, value):
        self.mapping, self.key, self.value = mapping, key, value
        self.original = mapping.get(key, self._MISSING)

    def install(self) -> None:
        self.mapping[self.key] = self.value

    def uninstall(self) -> None:
        if self.original is self._MISSING:
            self.mapping.pop(self.key, None)
        else:
            self.mapping[self.key] = self.original


def remembering_forward(function_class):
    """`forward` that also keeps its non-ctx arguments on ctx, for the jvp."""
    original = function_class.forward

    def forward(ctx, *args):
        ctx.fwdad_args = args
        return original(ctx, *args)

    return staticmethod(forward)


def _to_local_jvp(ctx, tangent, _grad_placements):
    spec = ctx.dtensor_spec
    if tangent.placements != spec.placements:
        tangent = tangent.redistribute(spec.mesh, spec.placements)
    local = tangent._local_tensor
    return local.view_as(local)


def _from_local_jvp(ctx, tangent, *_):
    _, mesh, placements, run_check, shape, stride, grad_placements = ctx.fwdad_args
    # run_check broadcasts replicated inputs from rank 0; the same Function does it to the tangent.
    return dtensor_api._FromTorchTensor.apply(tangent, mesh, placements, run_check, shape, stride, grad_placements)


def _redistribute_jvp(ctx, tangent, *_):
    _, mesh, placements, _async_op, dtype_config = ctx.fwdad_args
    return _redistribute.Redistribute.apply(tangent, mesh, placements, False, dtype_config)


def register_dtensor_rules() -> None:
    handlers = DTensor._op_dispatcher._custom_op_handlers
    switch(DictEntrySwitch(handlers, aten._has_same_storage_numel.default, has_same_storage_numel))
    functions = {
        dtensor_api._ToTorchTensor: _to_local_jvp,
        dtensor_api._FromTorchTensor: _from_local_jvp,
        _redistribute.Redistribute: _redistribute_jvp,
    }
    for function_class, jvp in functions.items():
        if function_class is not dtensor_api._ToTorchTensor:
            switch(AttributeSwitch(function_class, "forward", remembering_forward(function_class)))
        switch(AttributeSwitch(function_class, "jvp", staticmethod(jvp)))
