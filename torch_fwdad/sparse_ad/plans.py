"""Plans: the three stages run once per input shape, then repeated evaluation.

A plan is built once and evaluated many times (Newton iterations, implicit solvers). Patterns
that need sizes or the function itself ("diagonal", Banded, "detect", ...) are resolved on the
first call and cached on the plan, keyed by the input shapes. Jacobian and Hessian plans share
every step; they differ only in the declarations at the bottom (which colourings, which
detection, which exact product, how the output blocks are shaped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import scipy.sparse as sp
import torch

from torch_fwdad.sparse_ad.coloring import DEFAULT_ORDERING, Coloring, color_pattern
from torch_fwdad.sparse_ad.detection import detect_hessian_pattern, detect_pattern
from torch_fwdad.sparse_ad.evaluation import (
    OUTPUTS,
    Compressed,
    PreparedEvaluation,
    check_against_probe,
    cheaper_symmetric_coloring,
)
from torch_fwdad.sparse_ad.inputs import FlatInputs
from torch_fwdad.sparse_ad.patterns import DETECT_SPECS, Banded, BlockDiagonal, explicit_pattern, resolve_pattern, symmetrized
from torch_fwdad.sparse_ad.products import hvp, jvp

JACOBIAN_MODES = ("auto", "column", "row")
HESSIAN_METHODS = ("auto", "star", "acyclic")


def validate_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True, eq=False)
class _Plan:
    sparsity: object
    ordering: str = DEFAULT_ORDERING
    #: refinement passes after greedy colouring (None: DEFAULT_REFINE per kind); the passes
    #: used and the count before them are on `plan.coloring.refine` / `.greedy_num_colors`
    refine: int | None = None
    #: evaluate through torch.compile (True: inductor, or a backend name), compiled at the second
    #: call for each function (the first runs eagerly and checks); eager again, with a warning,
    #: if compiling fails
    compile: bool | str = False
    _cache: dict = field(default_factory=dict, repr=False)
    #: "last": (key, evaluation) of the last call that needed no check, repeated by the next call
    #: with the same function, input signature and arguments
    _calls: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.sparsity is None:
            raise ValueError("sparsity=None means dense: call jacobian/hessian directly, a plan needs a pattern")
        if isinstance(self.sparsity, str) and self.sparsity not in DETECT_SPECS:
            resolve_pattern(self.sparsity, 1, 1)  # an unknown name fails now, not at the first call
        if not isinstance(self.sparsity, (str, BlockDiagonal, Banded)):
            self._cache["static"] = self._prepare(explicit_pattern(self.sparsity))

    def __call__(self, func, x, *, chunk_size=None, output="sparse", check="auto"):
        key = (func, _signature(x), chunk_size, output, check)
        last = self._calls.get("last")
        if last is not None and last[0][0] is func and last[0][1:] == key[1:]:
            return last[1](x)
        return self._evaluate(func, x, chunk_size=chunk_size, output=output, check=check, key=key)

    def _evaluate(self, func, x, *, chunk_size=None, output="sparse", check="auto", key=None):
        """A call with every step: validation, preparation (first call per shape), the check.
        Once a call needs no check, the evaluation it did is kept as the plan's last call, which a
        call with the same function, input signature and arguments repeats directly."""
        validate_choice("output", output, OUTPUTS)
        inputs = FlatInputs.of(x)
        prepared = self._prepared(func, x, inputs)
        _check_columns(prepared.pattern, inputs.numel)
        flat_func, x_flat = inputs.flat_function(func), inputs.flatten(x).detach()
        # compile=True compiles at the second call: the first, eager, learns the output shape
        final = not self.compile or prepared.out_shape is not None or not prepared.coloring.num_colors
        if self.compile and prepared.out_shape is not None and prepared.coloring.num_colors:
            products = prepared.compiled_products(func, flat_func, x_flat, chunk_size, self.compile)
        else:
            products = prepared.products(flat_func, x_flat, chunk_size)
        compressed, prepared.out_shape = products(x_flat)
        if output == "compressed":
            finish = partial(Compressed, coloring=prepared.coloring, pattern=prepared.pattern)
            self._remember(key, final and prepared.check_mode(check) is None, inputs, products, finish)
            return finish(compressed)
        how = prepared.check_mode(check)
        values = prepared.values(compressed)
        check_against_probe(values, prepared.pattern, lambda v: self._exact_product(flat_func, x_flat, v), how,
                            self.KIND)
        prepared.checked = prepared.checked or how == "raise"
        row_shapes, col_shapes, row_tuple, col_tuple = self._blocks(prepared.out_shape, inputs)
        assembly = prepared.assembly(output, row_shapes, col_shapes, row_tuple, col_tuple, x_flat.device)
        self._remember(key, final and prepared.check_mode(check) is None, inputs, products,
                       lambda c: assembly(prepared.values(c)))
        return assembly(values)

    def _remember(self, key, repeatable, inputs, products, finish):
        """Keep a call that needed no check (and ran its final products) as the plan's last call."""
        if key is not None and repeatable:
            self._calls["last"] = (key, lambda x: finish(products(inputs.flatten(x).detach())[0]))

    def prepare(self, func, x) -> PreparedEvaluation:
        """Pattern (given or detected, cached per input shapes and dtype) and its colouring."""
        return self._prepared(func, x, FlatInputs.of(x))

    def _prepared(self, func, x, inputs) -> PreparedEvaluation:
        if "static" in self._cache:
            return self._cache["static"]
        key = (inputs.shapes, inputs.dtype)
        if key not in self._cache:
            detected = self.sparsity in DETECT_SPECS
            if detected:
                pattern = self._detect(func, x, method=self.sparsity)
            else:
                pattern = resolve_pattern(self.sparsity, self._rows(func, x, inputs), inputs.numel)
            self._cache[key] = self._prepare(pattern, detected)
        return self._cache[key]

    def _prepare(self, pattern, detected=False) -> PreparedEvaluation:
        pattern = self._pattern_for(pattern)
        colored = color_pattern(pattern, self._kinds(), self.ordering, self.refine, self._choose(pattern))
        return PreparedEvaluation(colored, detected)

    def _only_prepared(self) -> PreparedEvaluation:
        if len(self._cache) != 1:
            raise RuntimeError("this plan's pattern depends on the input: call the plan once first "
                               f"(it has been prepared for {len(self._cache)} input shapes)")
        return next(iter(self._cache.values()))

    @property
    def num_colors(self) -> int:
        """Products (JVPs, VJPs or HVPs) per evaluation."""
        return self._only_prepared().coloring.num_colors

    @property
    def coloring(self) -> Coloring:
        return self._only_prepared().coloring

    @property
    def pattern(self) -> sp.csr_array:
        return self._only_prepared().pattern


@dataclass(frozen=True, eq=False)
class JacobianPlan(_Plan):
    """Sparse Jacobian: `plan(func, x)` costs num_colors JVPs (mode "column") or VJPs ("row")."""

    mode: str = "auto"

    KIND = "Jacobian"
    _detect = staticmethod(detect_pattern)
    _exact_product = staticmethod(jvp)

    def __post_init__(self):
        validate_choice("mode", self.mode, JACOBIAN_MODES)
        super().__post_init__()

    def _kinds(self):
        return {"auto": ("column", "row"), "column": ("column",), "row": ("row",)}[self.mode]

    def _pattern_for(self, pattern):
        return pattern

    def _choose(self, pattern):
        return None  # column or row: the fewer products (both recover entries directly)

    def _rows(self, func, x, inputs) -> int:
        return _evaluate_once(func, x).numel()

    def _blocks(self, out_shape, inputs):
        """(row shapes, column shapes, rows as a tuple?, columns as a tuple?), as jacfwd lays them out."""
        return [out_shape], inputs.shapes, False, inputs.is_tuple


@dataclass(frozen=True, eq=False)
class HessianPlan(_Plan):
    """Sparse Hessian of a scalar function: `plan(func, x)` costs num_colors HVPs."""

    method: str = "auto"

    KIND = "Hessian"
    _detect = staticmethod(detect_hessian_pattern)
    _exact_product = staticmethod(hvp)

    def __post_init__(self):
        validate_choice("method", self.method, HESSIAN_METHODS)
        super().__post_init__()

    def _kinds(self):
        return {"auto": ("star", "acyclic"), "star": ("star",), "acyclic": ("acyclic",)}[self.method]

    def _choose(self, pattern):
        """auto: the cheaper call for this plan's compile setting (evaluation.cost), not merely
        the fewer colours; star on ties (direct recovery, no substitution round-off)."""
        return lambda colorings: cheaper_symmetric_coloring(colorings, pattern, compiled=bool(self.compile))

    def _pattern_for(self, pattern):
        return symmetrized(pattern)

    def _rows(self, func, x, inputs) -> int:
        return inputs.numel

    def _blocks(self, out_shape, inputs):
        return inputs.shapes, inputs.shapes, inputs.is_tuple, inputs.is_tuple


def _signature(x):
    """What a call's evaluation depends on in x besides its values: shapes, dtype, device."""
    parts = x if isinstance(x, tuple) else (x,)
    return isinstance(x, tuple), tuple((type(p), getattr(p, "shape", None), getattr(p, "dtype", None),
                                        getattr(p, "device", None), getattr(p, "layout", None)) for p in parts)


def _check_columns(pattern, numel):
    if pattern.shape[1] != numel:
        raise ValueError(f"sparsity pattern has {pattern.shape[1]} columns but x has {numel} entries")


def _evaluate_once(func, x):
    with torch.no_grad():
        out = func(*(x if isinstance(x, tuple) else (x,)))
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"func must return a single tensor, got {type(out).__name__}")
    return out
