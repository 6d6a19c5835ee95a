"""In-place overloads whose tangent comes from their out-of-place entry (`in_place_of:`).

`index_reduce_(self, ...)` with a tangent anywhere runs as
`self.copy_(index_reduce(self.clone(), ...))`:
the out-of-place overload carries torch_fwdad's rule, and `copy_` has PyTorch's own forward
formula, so self's tangent is replaced by the result's in place, as for any in-place op.
Reverse mode records CopyBackwards over the out-of-place node, which gives the same
gradients; without a tangent the captured kernel runs untouched.
"""

from __future__ import annotations

from torch import _VF

from .kernel import HIDDEN_LEVEL, can_carry_tangent, named_upstream, tangent_level, tangent_test
from .schema import OpSignature


def make_in_place_override(op, functional, upstream, sig: OpSignature, *, switch, when=None):
    call_upstream = named_upstream(op, upstream)
    tensor_args = sig.tensor_args
    any_tangent = tangent_test(sig)

    def override(keyset, *args, **kwargs):
        if not switch.active:
            return call_upstream(keyset, *args, **kwargs)
        # A mutating op must not run twice, so outside a known level (a compiled program's
        # own dual level) it looks for tangents at level 0, as kernel.must_probe_without_level says.
        level = tangent_level(keyset)
        level = HIDDEN_LEVEL if level < 0 else level
        if not any_tangent(args, kwargs, level):  # the common case, without binding
            return call_upstream(keyset, *args, **kwargs)
        bound = sig.bind(args, kwargs)
        if when is not None and not when(bound):
            return call_upstream(keyset, *args, **kwargs)
        if not any(_has_tangent(bound[i], level) for i in tensor_args):
            return call_upstream(keyset, *args, **kwargs)
        # the out-of-place node saves its self: give it a copy, not the tensor copy_ overwrites
        self = bound[0]
        pos, kw = sig.split([self.clone(), *bound[1:]])
        return self.copy_(functional(*pos, **kw))

    return override


def _has_tangent(arg, level) -> bool:
    return can_carry_tangent(arg) and _VF._unpack_dual(arg, level)[1] is not None
