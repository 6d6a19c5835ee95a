"""Plans: preparation (pattern, colouring, decompression) kept apart from evaluation.

A plan is built once and evaluated many times (Newton iterations, implicit solvers). Patterns
that need sizes or the function itself ("diagonal", Banded, "detect", ...) are resolved on the
first call and cached on the plan, keyed by the input shapes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from torch_fwdad.sparse_ad.assembly import OUTPUTS, Assembly, Compressed
from torch_fwdad.sparse_ad.coloring import DEFAULT_ORDERING, Coloring, coloring
from torch_fwdad.sparse_ad.decompress import DECOMPRESSIONS
from torch_fwdad.sparse_ad.patterns import DETECT_SPECS, Banded, BlockDiagonal, explicit_pattern, resolve_pattern, symmetrized

JACOBIAN_MODES = ("auto", "column", "row")
HESSIAN_METHODS = ("auto", "star", "acyclic")
#: "auto": "raise" on the first evaluation of a detected pattern, no check for a given one
CHECKS = ("auto", None, "raise", "warn")


class SparsityPatternError(ValueError):
    """The pattern misses nonzeros that the function really has (found by check="raise")."""


# ----------------------------------------------------------------------------- inputs

@dataclass(frozen=True)
class FlatInputs:
    """x (a tensor or a tuple of tensors) seen as one flat vector of `numel` entries."""

    shapes: tuple
    is_tuple: bool

    @classmethod
    def of(cls, x) -> "FlatInputs":
        parts = x if isinstance(x, tuple) else (x,)
        if not parts or not all(isinstance(p, torch.Tensor) for p in parts):
            raise TypeError(f"x must be a tensor or a non-empty tuple of tensors, got {type(x).__name__}")
        if len({p.dtype for p in parts}) > 1 or len({p.device for p in parts}) > 1:
            raise TypeError("all tensors in x must share one dtype and device (they form one flat vector)")
        if not parts[0].is_floating_point() and not parts[0].is_complex():
            raise TypeError(f"x must be floating point to be differentiated, got {parts[0].dtype}")
        return cls(tuple(tuple(p.shape) for p in parts), isinstance(x, tuple))

    @property
    def numels(self):
        return [math.prod(s) for s in self.shapes]

    @property
    def numel(self):
        return sum(self.numels)

    def flatten(self, x) -> torch.Tensor:
        parts = x if self.is_tuple else (x,)
        return torch.cat([p.reshape(-1) for p in parts])

    def unflatten(self, flat: torch.Tensor) -> tuple:
        return tuple(chunk.reshape(shape) for chunk, shape in zip(flat.split(self.numels), self.shapes))

    def flat_function(self, func):
        def flat_func(flat):
            out = func(*self.unflatten(flat))
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"func must return a single tensor, got {type(out).__name__}")
            return out
        return flat_func


# ----------------------------------------------------------------------------- compressed products

def _seeds(colors: np.ndarray, num_colors: int, like: torch.Tensor) -> torch.Tensor:
    """(num_colors, len(colors)) one-hot rows: seed c sums the columns (rows, variables) of colour c."""
    seeds = like.new_zeros(num_colors, len(colors))
    seeds[torch.from_numpy(colors).to(like.device), torch.arange(len(colors), device=like.device)] = 1
    return seeds


def jvp_products(flat_func, x_flat, seeds, chunk_size=None):
    def one(tangent):
        return torch.func.jvp(flat_func, (x_flat,), (tangent,))[1]
    return torch.func.vmap(one, chunk_size=chunk_size)(seeds)


def vjp_products(flat_func, x_flat, seeds_of_out_shape, chunk_size=None):
    """`seeds_of_out_shape` is a function of the output (its shape is known only after the forward pass)."""
    out, pullback = torch.func.vjp(flat_func, x_flat)
    seeds = seeds_of_out_shape(out)
    return torch.func.vmap(lambda u: pullback(u.reshape(out.shape))[0], chunk_size=chunk_size)(seeds), out.shape


def gradient_of(flat_func):
    """The gradient as jacrev of the scalar function. Not torch.func.grad: a JVP through grad's
    unbatched pullback fails in PyTorch on ops such as mse_loss ("ZeroTensors are immutable"),
    while jacrev's vmapped pullback, the one torch.func.hessian uses, works."""
    return torch.func.jacrev(_scalar(flat_func))


def hvp_products(flat_func, x_flat, seeds, chunk_size=None):
    """Forward-over-reverse: JVPs of the gradient."""
    grad = gradient_of(flat_func)

    def one(tangent):
        return torch.func.jvp(grad, (x_flat,), (tangent,))[1]
    return torch.func.vmap(one, chunk_size=chunk_size)(seeds)


def _scalar(flat_func):
    def scalar_func(flat):
        out = flat_func(flat)
        if out.numel() != 1:
            raise ValueError(f"hessian needs func to return a single number, got shape {tuple(out.shape)}")
        return out.reshape(())
    return scalar_func


# ----------------------------------------------------------------------------- debug check

def check_against_probe(values, pattern, exact_times, how, what="Jacobian"):
    """Compare (sparse result) @ v with an exact product at one random v.

    A nonzero outside the pattern is either dropped or added into another entry by the
    decompression; either way the two products differ at a random v (with probability one).
    """
    if how is None:
        return
    if how not in CHECKS[2:]:
        raise ValueError(f"check must be 'auto', None, 'raise' or 'warn', got {how!r}")
    m, n = pattern.shape
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(n, generator=generator, dtype=values.real.dtype).to(values)
    exact = exact_times(probe).reshape(-1)
    rows, cols = np.nonzero(pattern)  # row-major, the order of `values`
    rows, cols = torch.from_numpy(rows).to(values.device), torch.from_numpy(cols).to(values.device)
    approx = values.new_zeros(m).index_add_(0, rows, values * probe[cols])
    scale = values.new_zeros(m).index_add_(0, rows, (values * probe[cols]).abs()).real + exact.abs()
    eps = torch.finfo(values.real.dtype).eps
    bad = ((exact - approx).abs() > eps ** 0.5 * scale + eps * scale.max()).nonzero().flatten()
    if len(bad) == 0:
        return
    message = (f"the sparsity pattern misses nonzeros of the {what}: rows {bad[:10].tolist()}"
               f"{' ...' if len(bad) > 10 else ''} ({len(bad)} of {m}) disagree with an exact product "
               f"(largest difference {(exact - approx).abs().max().item():.3g}). Add the missing entries "
               "or use sparsity='detect'.")
    if how == "raise":
        raise SparsityPatternError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------------------------- plans

class Prepared:
    """Everything evaluation needs for one input shape, built once: pattern, colouring, the
    decompression's index tensors, the seeds and the output's index buffers (per dtype, device
    and format), and compiled evaluations (per function). A call does products + gathers only."""

    def __init__(self, pattern, coloring, decompression, detected=False):
        self.pattern, self.coloring, self.decompression = pattern, coloring, decompression
        self.detected = detected
        self.checked = False
        self.out_shape = None  # known after the first evaluation
        self._seeds, self._assemblies = {}, {}
        self._compiled = {}  # func -> its compiled evaluation (which holds func anyway)

    @classmethod
    def build(cls, pattern, kinds, ordering, refine=None, detected=False):
        """Colour for every kind in `kinds` and keep the one needing the fewest products (ties: first)."""
        colorings = [coloring(pattern, kind, ordering, refine) for kind in kinds]
        best = min(colorings, key=lambda c: c.num_colors)
        return cls(pattern, best, DECOMPRESSIONS[best.kind](pattern, best), detected)

    def seeds(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        if key not in self._seeds:
            self._seeds[key] = _seeds(self.coloring.colors, self.coloring.num_colors, like)
        return self._seeds[key]

    def assembly(self, output, row_shapes, col_shapes, row_tuple, col_tuple, device) -> Assembly:
        key = (output, tuple(row_shapes), tuple(col_shapes), row_tuple, col_tuple, device)
        if key not in self._assemblies:
            self._assemblies[key] = Assembly(self.pattern, row_shapes, col_shapes, output, row_tuple, col_tuple, device)
        return self._assemblies[key]

    def check_mode(self, check):
        """The default probes a detected pattern once (at its first evaluation)."""
        if check != "auto":
            return check
        if self.detected and not self.checked:
            return "raise"
        return None

    def compiled(self, func, build, backend):
        """torch.compile of `build()` for this function, made at its first use (chunk_size included)."""
        if func not in self._compiled:
            self._compiled[func] = _CompiledOrEager(build(), backend)
        return self._compiled[func]


class _CompiledOrEager:
    """A torch.compile'd evaluation that falls back to eager, with a warning, if compiling fails."""

    def __init__(self, run, backend):
        backend = "inductor" if backend is True else backend
        self.run, self.compiled = run, torch.compile(run, dynamic=False, backend=backend)

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as error:  # noqa: BLE001 - any compiler failure: eager is still exact
                warnings.warn(f"compile=True: torch.compile failed ({type(error).__name__}: {str(error)[:200]}); "
                              "evaluating eagerly", RuntimeWarning, stacklevel=3)
                self.compiled = None
        return self.run(*args)


def _validate_choice(name, value, allowed):
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

    def _static_shape(self):
        raise NotImplementedError

    def __call__(self, func, x, *, chunk_size=None, output="sparse", check="auto"):
        _validate_choice("output", output, OUTPUTS)
        inputs = FlatInputs.of(x)
        prepared = self.prepare(func, x)
        _check_columns(prepared.pattern, inputs.numel)
        flat_func, x_flat = inputs.flat_function(func), inputs.flatten(x).detach()
        if self.compile and prepared.out_shape is not None and prepared.coloring.num_colors:
            evaluate = prepared.compiled(func, lambda: self._compilable(prepared, flat_func, chunk_size, x_flat),
                                         self.compile)
            compressed, values = evaluate(x_flat)
        else:
            compressed, values = self._evaluation(prepared, flat_func, chunk_size, output)(x_flat)
        if output == "compressed":
            return Compressed(compressed, prepared.coloring, prepared.pattern)
        how = prepared.check_mode(check)
        check_against_probe(values, prepared.pattern, self._exact_product(flat_func, x_flat), how, self.KIND)
        prepared.checked = prepared.checked or how == "raise"
        return self._assembly(prepared, output, inputs, x_flat.device)(values)

    def __post_init__(self):
        if self.sparsity is None:
            raise ValueError("sparsity=None means dense: call jacobian/hessian directly, a plan needs a pattern")
        if isinstance(self.sparsity, str) and self.sparsity not in DETECT_SPECS:
            resolve_pattern(self.sparsity, 1, 1)  # an unknown name fails now, not at the first call
        if not isinstance(self.sparsity, (str, BlockDiagonal, Banded)):
            self._cache["static"] = self._prepare(self._pattern_for(explicit_pattern(self.sparsity)))

    def prepare(self, func, x) -> Prepared:
        """Pattern (given or detected, cached per input shapes and dtype) and its colouring."""
        inputs = FlatInputs.of(x)
        key = (inputs.shapes, str(inputs_dtype(x)))

        def resolve():
            if self.sparsity in DETECT_SPECS:
                return self._detect(func, x)
            return resolve_pattern(self.sparsity, self._rows(func, x, inputs), inputs.numel)
        return self._prepared_for(key, resolve)

    def _prepared_for(self, key, resolve):
        if "static" in self._cache:
            return self._cache["static"]
        if key not in self._cache:
            prepared = self._prepare(self._pattern_for(resolve()))
            prepared.detected = self.sparsity in DETECT_SPECS
            self._cache[key] = prepared
        return self._cache[key]

    def _only_prepared(self) -> Prepared:
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

    def __post_init__(self):
        _validate_choice("mode", self.mode, JACOBIAN_MODES)
        super().__post_init__()

    def _pattern_for(self, pattern):
        return pattern

    def _prepare(self, pattern):
        kinds = {"auto": ("column", "row"), "column": ("column",), "row": ("row",)}[self.mode]
        return Prepared.build(pattern, kinds, self.ordering, self.refine)

    def _detect(self, func, x):
        from torch_fwdad.sparse_ad.detect import detect_pattern
        return detect_pattern(func, x, method=self.sparsity)

    def _rows(self, func, x, inputs) -> int:
        return _evaluate_once(func, x).numel()

    KIND = "Jacobian"

    def _exact_product(self, flat_func, x_flat):
        return lambda v: torch.func.jvp(flat_func, (x_flat,), (v,))[1]

    def _assembly(self, prepared, output, inputs, device):
        return prepared.assembly(output, [prepared.out_shape], inputs.shapes, False, inputs.is_tuple, device)

    def _evaluation(self, prepared, flat_func, chunk_size, output):
        """x_flat -> (compressed products, values in the pattern's CSR order): all of a call's arithmetic."""
        colors, rows = prepared.coloring, prepared.pattern.shape[0]

        def evaluate(x_flat):
            if colors.kind == "column":
                compressed = _jvps_or_shape(flat_func, x_flat, prepared.seeds(x_flat), chunk_size)
                out_shape = tuple(compressed.shape[1:])
            else:
                compressed, out_shape = vjp_products(flat_func, x_flat, lambda out: prepared.seeds(out.reshape(-1)),
                                                     chunk_size)
            if math.prod(out_shape) != rows:
                raise ValueError(f"sparsity pattern has {rows} rows but func returns "
                                 f"{math.prod(out_shape)} values (shape {tuple(out_shape)})")
            prepared.out_shape = tuple(out_shape)
            if output == "compressed":
                return compressed, None
            return compressed, prepared.decompression.values(compressed.reshape(len(compressed), -1))
        return evaluate

    def _compilable(self, prepared, flat_func, chunk_size, like):
        """The evaluation for torch.compile, closing over tensors and functions only (few guards);
        made after a first eager call, so the output shape is known."""
        colors, decompress = prepared.coloring, prepared.decompression.function(like.device)
        if colors.kind == "column":
            seeds = prepared.seeds(like)

            def products(x_flat):
                return jvp_products(flat_func, x_flat, seeds, chunk_size)
        else:
            out_seeds = _seeds(colors.colors, colors.num_colors, like.new_empty(prepared.pattern.shape[0]))

            def products(x_flat):
                return vjp_products(flat_func, x_flat, lambda out: out_seeds.to(out.dtype), chunk_size)[0]

        def evaluate(x_flat):
            compressed = products(x_flat)
            return compressed, decompress(compressed.reshape(len(compressed), -1))
        return evaluate


def _jvps_or_shape(flat_func, x_flat, seeds, chunk_size):
    if len(seeds):
        return jvp_products(flat_func, x_flat, seeds, chunk_size)
    with torch.no_grad():  # an empty pattern: no product, but the output shape is still needed
        out = flat_func(x_flat)
    return out.new_zeros(0, *out.shape)


@dataclass(frozen=True, eq=False)
class HessianPlan(_Plan):
    """Sparse Hessian of a scalar function: `plan(func, x)` costs num_colors HVPs."""

    method: str = "auto"

    def __post_init__(self):
        _validate_choice("method", self.method, HESSIAN_METHODS)
        super().__post_init__()

    def _pattern_for(self, pattern):
        return symmetrized(pattern)

    def _prepare(self, pattern):
        # star first: on a tie prefer direct recovery (no substitution round-off)
        kinds = {"auto": ("star", "acyclic"), "star": ("star",), "acyclic": ("acyclic",)}[self.method]
        return Prepared.build(pattern, kinds, self.ordering, self.refine)

    def _detect(self, func, x):
        from torch_fwdad.sparse_ad.detect import detect_hessian_pattern
        return detect_hessian_pattern(func, x, method=self.sparsity)

    def _rows(self, func, x, inputs) -> int:
        return inputs.numel

    KIND = "Hessian"

    def _exact_product(self, flat_func, x_flat):
        return lambda v: torch.func.jvp(gradient_of(flat_func), (x_flat,), (v,))[1]

    def _assembly(self, prepared, output, inputs, device):
        return prepared.assembly(output, inputs.shapes, inputs.shapes, inputs.is_tuple, inputs.is_tuple, device)

    def _evaluation(self, prepared, flat_func, chunk_size, output):
        """x_flat -> (compressed HVPs, values in the pattern's CSR order)."""
        def evaluate(x_flat):
            seeds = prepared.seeds(x_flat)
            if len(seeds):
                compressed = hvp_products(flat_func, x_flat, seeds, chunk_size)
            else:
                compressed = x_flat.new_zeros(0, len(x_flat))
            prepared.out_shape = ()
            if output == "compressed":
                return compressed, None
            return compressed, prepared.decompression.values(compressed)
        return evaluate

    def _compilable(self, prepared, flat_func, chunk_size, like):
        """As JacobianPlan._compilable: tensors and functions only in the closure."""
        seeds, decompress = prepared.seeds(like), prepared.decompression.function(like.device)

        def evaluate(x_flat):
            compressed = hvp_products(flat_func, x_flat, seeds, chunk_size)
            return compressed, decompress(compressed)
        return evaluate


def _check_columns(pattern, numel):
    if pattern.shape[1] != numel:
        raise ValueError(f"sparsity pattern has {pattern.shape[1]} columns but x has {numel} entries")


def inputs_dtype(x):
    return (x[0] if isinstance(x, tuple) else x).dtype


def _evaluate_once(func, x):
    with torch.no_grad():
        out = func(*(x if isinstance(x, tuple) else (x,)))
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"func must return a single tensor, got {type(out).__name__}")
    return out


# ----------------------------------------------------------------------------- public entry points

def jacobian_plan(sparsity, *, mode="auto", ordering=DEFAULT_ORDERING, refine=None, compile=False) -> JacobianPlan:
    """A reusable sparse-Jacobian plan. See `jacobian` for `sparsity`, `mode` and `refine`.

    compile=True evaluates the products and the decompression through torch.compile (from the
    second call on, per function); worth it when the plan is evaluated many times.
    """
    return JacobianPlan(sparsity, ordering, refine, compile, mode=mode)


def hessian_plan(sparsity, *, method="auto", ordering=DEFAULT_ORDERING, refine=None, compile=False) -> HessianPlan:
    """A reusable sparse-Hessian plan. See `hessian` for `sparsity` and `method`; `jacobian_plan` for compile."""
    return HessianPlan(sparsity, ordering, refine, compile, method=method)


def jacobian(func, x, *, sparsity=None, mode="auto", chunk_size=None, output="sparse", check="auto",
             ordering=DEFAULT_ORDERING, refine=None):
    """Jacobian of `func` at `x`, shaped (*out_shape, *in_shape) like `torch.func.jacfwd`.

    sparsity: None (dense, computed by torch.func.jacfwd / jacrev and returned dense),
    "diagonal", BlockDiagonal(b), Banded(lower, upper), an explicit (outputs x inputs) pattern
    (bool tensor, torch sparse COO/CSR, scipy.sparse), or "detect" / "detect-numeric".
    mode: "column" (one JVP per colour), "row" (one VJP per colour), "auto" (fewer products).
    output: "sparse"/"coo" (torch sparse COO), "csr" (2-D flattened), "dense", "scipy" / "scipy-csc"
    (2-D scipy.sparse CSR / CSC arrays), "compressed" (a `Compressed`: the products and the colouring).
    check: "raise" or "warn" when the pattern misses true nonzeros (one extra JVP), None: no check;
    "auto" (default): "raise" at the first evaluation of a detected pattern, no check otherwise.
    refine: colouring refinement passes (DSatur + iterated greedy; never more colours),
    None for the per-kind default DEFAULT_REFINE, 0 for plain greedy.
    """
    if sparsity is None:
        return _dense_jacobian(func, x, mode, chunk_size)
    return jacobian_plan(sparsity, mode=mode, ordering=ordering, refine=refine)(
        func, x, chunk_size=chunk_size, output=output, check=check)


def hessian(func, x, *, sparsity=None, method="auto", chunk_size=None, output="sparse", check="auto",
            ordering=DEFAULT_ORDERING, refine=None):
    """Hessian of the scalar `func` at `x` from Hessian-vector products (forward-over-reverse).

    method: "star" (direct recovery), "acyclic" (fewer colours, recovery by substitution) or
    "auto" (fewer colours; star on ties). Other arguments as in `jacobian`.
    """
    if sparsity is None:
        FlatInputs.of(x)
        argnums = tuple(range(len(x))) if isinstance(x, tuple) else 0
        return torch.func.hessian(func, argnums=argnums)(*(x if isinstance(x, tuple) else (x,)))
    return hessian_plan(sparsity, method=method, ordering=ordering, refine=refine)(
        func, x, chunk_size=chunk_size, output=output, check=check)


def _dense_jacobian(func, x, mode, chunk_size):
    _validate_choice("mode", mode, JACOBIAN_MODES)
    FlatInputs.of(x)
    args = x if isinstance(x, tuple) else (x,)
    argnums = tuple(range(len(args))) if isinstance(x, tuple) else 0
    if mode == "row":
        return torch.func.jacrev(func, argnums=argnums, chunk_size=chunk_size)(*args)
    return torch.func.jacfwd(func, argnums=argnums)(*args)
