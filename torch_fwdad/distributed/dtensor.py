"""Forward mode on DTensor: one op handler and the jvp of DTensor's own autograd.Functions.

- `aten._has_same_storage_numel` (asked by `make_dual`) returns a bool, which
  `register_sharding` cannot express (it requires an output placement), so it goes where
  DTensor keeps its own handlers for bool-valued ops (`is_same_size`): `_custom_op_handlers`.
- `DTensor.from_local`, `to_local` and `redistribute` are autograd.Functions without `jvp`;
  each gets one that applies the same Function to the tangent, synchronously. Their
  `forward` is wrapped only to remember its arguments for that.
- `aten._new_zeros_with_same_feature_meta`, which forward AD calls where a tangent's local
  storage differs from its primal's (it does on some ranks only, e.g. FSDP's padded shards,
  so its missing strategy failed those ranks alone), gets a sharding strategy registered
  through DTensor's `register_op_strategy`: zeros laid out like the primal.
- Under torch.func.jvp those Functions, and `distribute_tensor` of a transformed tensor,
  raise one clear error on every rank before any collective (other transforms keep
  upstream's behaviour): functorch hands DTensor code a plain `torch.Tensor` wrapper (no
  DTensor methods), and `distribute_tensor` of such a wrapper failed on the source rank
  only, leaving the others waiting in the scatter until the group's timeout.
All of it is undone by torch_fwdad.disable().
"""

from __future__ import annotations

import functools

import torch
import torch.distributed.tensor as dtensor_package
from torch._C._functorch import TransformType
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters
from torch.distributed.tensor import DTensor
from torch.distributed.tensor import _api as dtensor_api
from torch.distributed.tensor import _redistribute
from torch.distributed.tensor._dtensor_spec import DTensorSpec
from torch.distributed.tensor._op_schema import OpSchema, OpSpec, OpStrategy, RuntimeSchemaInfo
from torch.distributed.tensor._ops.utils import generate_redistribute_costs, register_op_strategy

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


def new_zeros_like_primal_strategy(op_schema: OpSchema) -> OpStrategy:
    """_new_zeros_with_same_feature_meta(tangent, primal): the output and both inputs take
    each of the primal's layouts (the tangent is redistributed to it, as copy_ would)."""
    tangent, primal, *rest = op_schema.args_schema
    if rest and rest[0] != 0:
        raise NotImplementedError(
            "torch_fwdad: _new_zeros_with_same_feature_meta on a DTensor with batch dimensions "
            "(vmap over forward AD) has no sharding strategy"
        )
    choices = []
    for choice in primal.strategies:
        spec = choice.output_spec
        layout = DTensorSpec(spec.mesh, spec.placements)
        costs = [generate_redistribute_costs(tangent, layout), generate_redistribute_costs(primal, layout)]
        choices.append(OpSpec(output_specs=layout, input_specs=(layout, layout), redistribute_cost=costs))
    return OpStrategy(choices)


class StrategySwitch:
    """One sharding strategy in DTensor's propagator, registered through `register_op_strategy`."""

    def __init__(self, op, strategy, schema_info):
        self.op, self.strategy, self.schema_info = op, strategy, schema_info
        self.propagator = DTensor._op_dispatcher.sharding_propagator

    def install(self) -> None:
        register_op_strategy(self.op, self.schema_info)(self.strategy)
        self.clear_caches()

    def uninstall(self) -> None:
        self.propagator.op_strategy_funcs.pop(self.op, None)
        self.propagator.op_to_schema_info.pop(self.op, None)
        self.clear_caches()

    def clear_caches(self) -> None:
        # DTensor caches sharding decisions in Python and in its C++ fast path
        self.propagator.propagate_op_sharding.cache_clear()
        torch._C._clear_DTensor_sharding_propagator_cache()


UNDER_TORCH_FUNC = (
    "is not supported under torch.func transforms (functorch wraps a DTensor in a plain torch.Tensor, "
    "which has no DTensor methods and which DTensor's dispatcher does not shard for every op); "
    "use torch.autograd.forward_ad: make_dual the inputs (and torch.func.functional_call with dual "
    "parameters), then unpack_dual, as in docs/distributed.md"
)


def under_torch_func_jvp() -> bool:
    """A torch.func.jvp (or jacfwd, hessian) transform is active. Other transforms (grad,
    vmap) keep upstream's behaviour and errors: this module is about forward mode."""
    return torch._C._are_functorch_transforms_active() and any(
        interpreter.key() == TransformType.Jvp for interpreter in retrieve_all_functorch_interpreters())


def refuse_under_torch_func(what: str):
    raise NotImplementedError(f"torch_fwdad: a JVP through {what} {UNDER_TORCH_FUNC}")


def refusing_apply_under_torch_func(function_class, what: str):
    """`apply` that refuses under torch.func.jvp, before the Function runs (so every rank
    refuses at the same point, with no collective in flight)."""
    original = function_class.apply

    def apply(cls, *args, **kwargs):
        if under_torch_func_jvp():
            refuse_under_torch_func(what)
        return original(*args, **kwargs)

    return classmethod(apply)


def refusing_distribute_tensor(original):
    def distribute_tensor(tensor, *args, **kwargs):
        if under_torch_func_jvp() and torch._C._functorch.is_functorch_wrapped_tensor(tensor):
            refuse_under_torch_func("distribute_tensor")
        return original(tensor, *args, **kwargs)

    return functools.wraps(original)(distribute_tensor)


def register_dtensor_rules() -> None:
    handlers = DTensor._op_dispatcher._custom_op_handlers
    switch(DictEntrySwitch(handlers, aten._has_same_storage_numel.default, has_same_storage_numel))
    functions = {
        dtensor_api._ToTorchTensor: _to_local_jvp,
        dtensor_api._FromTorchTensor: _from_local_jvp,
        _redistribute.Redistribute: _redistribute_jvp,
    }
    names = {dtensor_api._ToTorchTensor: "DTensor.to_local", dtensor_api._FromTorchTensor: "DTensor.from_local",
             _redistribute.Redistribute: "DTensor.redistribute"}
    for function_class, jvp in functions.items():
        if function_class is not dtensor_api._ToTorchTensor:
            switch(AttributeSwitch(function_class, "forward", remembering_forward(function_class)))
        switch(AttributeSwitch(function_class, "jvp", staticmethod(jvp)))
        switch(AttributeSwitch(function_class, "apply", refusing_apply_under_torch_func(function_class, names[function_class])))
    new_zeros = aten._new_zeros_with_same_feature_meta.default
    switch(StrategySwitch(new_zeros, new_zeros_like_primal_strategy, RuntimeSchemaInfo(static_argnum=2)))
    refusing = refusing_distribute_tensor(dtensor_api.distribute_tensor)
    for module in (dtensor_api, dtensor_package):
        switch(AttributeSwitch(module, "distribute_tensor", refusing))
