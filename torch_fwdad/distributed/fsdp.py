"""Forward mode through FSDP2 (`torch.distributed.fsdp.fully_shard`): two small patches.

- `RegisterPostBackwardFunction` returns its inputs as they are, and its `jvp` returns the
  tangents as they are; autograd wants a view of the tangent for an input returned as-is
  ("forward is returning a view ... jvp is not returning a view"), so every forward_ad
  call through an FSDP module failed. Its jvp here returns views.
- Before each forward FSDP all-gathers its own sharded parameters and puts the unsharded
  ones on the module, in place of whatever was there: a tangent on the parameter the
  module held (`functional_call` with dual parameters) was dropped, a silent zero.
  `FSDPParam.to_unsharded` here also all-gathers that tangent and gives it to the
  unsharded parameter, or raises where it cannot be exact.
- Under torch.func, parameters passed to an FSDP module (functional_call) are functorch
  wrappers, on which FSDP's lazy init and forward AD's tangent layout check failed
  differently on different ranks (one rank waited in the all-gather until the timeout):
  `FSDPState._root_pre_forward` here refuses first under torch.func.jvp, on every rank alike.
All are undone by torch_fwdad.disable().
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as _fwad
from torch.distributed.fsdp._fully_shard import _fsdp_param, _fsdp_param_group, _fsdp_state
from torch.distributed.tensor import DTensor, Replicate

from .dtensor import under_torch_func_jvp
from .switches import AttributeSwitch, switch


def _post_backward_jvp(ctx, _param_group_tangent, *tangents):
    return tuple(None if t is None else t.view_as(t) for t in tangents)


def unsharded_with_tangent(original):
    def to_unsharded(self) -> None:
        level = _fwad._current_level
        if level < 0:
            return original(self)
        held = self._module_info.module._parameters.get(self._module_info.param_name)
        if held is not None and held is not self.sharded_param and torch._C._functorch.peek_interpreter_stack() is not None:
            _refuse_under_torch_func(self)
        tangent = None if held is None else _fwad.unpack_dual(held).tangent
        if tangent is not None:  # checked and gathered first: a refusal leaves FSDP's state as it was
            tangent = _full_tangent(self, held, tangent)
        original(self)
        _set_tangent(self._unsharded_param, tangent)
        return None

    return to_unsharded


def _full_tangent(fsdp_param, held, tangent) -> torch.Tensor:
    name = _name(fsdp_param)
    if torch._C._functorch.peek_interpreter_stack() is not None:
        _refuse_under_torch_func(fsdp_param)
    if not _shares_storage(_fwad.unpack_dual(held).primal, fsdp_param.sharded_param):
        raise NotImplementedError(
            f"torch_fwdad: the parameter {name} passed to an FSDP2 module carries a tangent but is not the "
            f"module's own sharded parameter: FSDP computes with its own parameters and ignores the value "
            f"passed, so the tangent would belong to another point; pass "
            f"forward_ad.make_dual(param.detach(), tangent) for each of the module's parameters"
        )
    if isinstance(tangent, DTensor):
        tangent = tangent.redistribute(tangent.device_mesh, [Replicate()] * tangent.device_mesh.ndim).to_local()
    return tangent.reshape(fsdp_param._unsharded_param.shape)


def refusing_root_pre_forward(original):
    def _root_pre_forward(self, module, args, kwargs):
        if under_torch_func_jvp():
            for name, param in module.named_parameters():
                if torch._C._functorch.is_functorch_wrapped_tensor(param):
                    _refuse_parameter_under_torch_func(name)
        return original(self, module, args, kwargs)

    return _root_pre_forward


def _name(fsdp_param) -> str:
    return fsdp_param._param_fqn or fsdp_param._module_info.param_name


def _refuse_under_torch_func(fsdp_param):
    _refuse_parameter_under_torch_func(_name(fsdp_param))


def _refuse_parameter_under_torch_func(name: str):
    raise NotImplementedError(
        f"torch_fwdad: a JVP w.r.t. the FSDP2 parameter {name} under torch.func is not supported "
        f"(FSDP all-gathers its own sharded parameters, which the transform does not see); use "
        f"torch.autograd.forward_ad with torch.func.functional_call and dual parameters"
    )


def _shares_storage(a, b) -> bool:
    local = lambda t: t._local_tensor if isinstance(t, DTensor) else t  # noqa: E731
    return local(a).untyped_storage().data_ptr() == local(b).untyped_storage().data_ptr()


def _set_tangent(param, tangent) -> None:
    """Give FSDP's unsharded parameter `tangent` in place (zeros when None, so a tangent
    from an earlier forward in the same dual level never lingers); values stay bitwise."""
    if tangent is None and _fwad.unpack_dual(param).tangent is None:
        return
    with torch.no_grad():
        values = param.detach().clone()
        param.copy_(values if tangent is None else _fwad.make_dual(values, tangent))


def register_fsdp_rules() -> None:
    function = _fsdp_param_group.RegisterPostBackwardFunction
    switch(AttributeSwitch(function, "jvp", staticmethod(_post_backward_jvp)))
    fsdp_param = _fsdp_param.FSDPParam
    switch(AttributeSwitch(fsdp_param, "to_unsharded", unsharded_with_tangent(fsdp_param.to_unsharded)))
    state = _fsdp_state.FSDPState
    switch(AttributeSwitch(state, "_root_pre_forward", refusing_root_pre_forward(state._root_pre_forward)))
