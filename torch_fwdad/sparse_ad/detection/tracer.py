"""Structural sparsity detection: trace `func` once and propagate each element's input dependencies.

`func` runs once on a real point under a `__torch_dispatch__` mode that keeps, for every tensor
element, the set of input entries it depends on (a boolean scipy CSR matrix of shape
(numel, inputs)). The per-op rules live in `rules`; an op without one falls back to "every
output depends on every input it sees" and is named in a warning. Control flow that depends
on values follows the traced point (see docs/sparse.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from torch_fwdad.sparse_ad.detection.rules import dense_rule, rule_for, written_arguments
from torch_fwdad.sparse_ad.inputs import FlatInputs
from torch_fwdad.sparse_ad.patterns import as_bool_csr, from_coordinates


def structural_pattern(func, x) -> sp.csr_array:
    """Trace func once at x and return the (outputs, inputs) dependency pattern."""
    inputs = FlatInputs.of(x)
    parts = tuple(p.detach().clone() for p in (x if inputs.is_tuple else (x,)))
    tracer = _DependencyTracer(inputs.numel)
    offset = 0
    for part in parts:
        rows = np.arange(part.numel())
        tracer.deps[part] = from_coordinates(rows, rows + offset, part.numel(), inputs.numel)
        offset += part.numel()
    # functionalize: writes into views become out-of-place scatters the rules can follow
    with torch.no_grad(), tracer:
        out = torch.func.functionalize(func)(*parts)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"func must return a single tensor, got {type(out).__name__}")
    if tracer.unknown:
        warnings.warn(f"sparsity detection does not know {sorted(tracer.unknown)}: assumed every output "
                      "of these ops depends on every input entry they receive (a denser pattern, still correct)",
                      RuntimeWarning, stacklevel=2)
    return tracer.deps_of(out)



class _DependencyTracer(TorchDispatchMode):
    def __init__(self, num_inputs):
        super().__init__()
        self.num_inputs = num_inputs
        self.deps = WeakIdKeyDictionary()
        self.unknown = set()

    def deps_of(self, tensor) -> sp.csr_array:
        found = self.deps.get(tensor)
        if found is None:
            return sp.csr_array((tensor.numel(), self.num_inputs), dtype=bool)
        return found

    def tracked(self, tensor) -> bool:
        return isinstance(tensor, torch.Tensor) and tensor in self.deps and self.deps[tensor].nnz > 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves, _ = tree_flatten((args, kwargs))
        if not any(self.tracked(t) for t in leaves):
            return out
        name = str(func.overloadpacket.__name__)
        if any(t._base is not None and self.tracked(t._base) for t in written_arguments(func, args, kwargs)):
            # the write reaches the view's base, whose dependencies this tracer cannot update
            raise NotImplementedError(
                f"sparsity detection cannot follow the in-place {name} on a view that survived "
                "functionalization; pass an explicit pattern or use sparsity='detect-numeric'")
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        for tensor, deps in zip(outs, self._dependencies(func, name, args, kwargs, outs)):
            if tensor.is_floating_point() or tensor.is_complex():
                self.deps[tensor] = as_bool_csr(deps)
        return out

    def _dependencies(self, func, name, args, kwargs, outs):
        """The op's rule, or dense dependence on everything it reads (named in the warning)."""
        rule = rule_for(func, args, kwargs)
        if rule is not None:
            try:
                results = rule(self, func, args, kwargs, outs)
                if all(deps.shape == (t.numel(), self.num_inputs) for t, deps in zip(outs, results)):
                    return results
                self.unknown.add(f"{name} (its rule gave the wrong number of rows)")
            except Exception as error:  # a rule outside its domain: stay correct, go dense
                self.unknown.add(f"{name} ({type(error).__name__} in its rule)")
        else:
            self.unknown.add(name)
        return dense_rule(self, func, args, kwargs, outs)

