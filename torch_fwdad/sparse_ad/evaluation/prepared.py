"""Everything a plan's evaluation needs for one input shape, built once from a `ColoredPattern`."""

from __future__ import annotations

import math

import torch

from torch_fwdad.sparse_ad.coloring import ColoredPattern
from torch_fwdad.sparse_ad.evaluation.assembly import Assembly
from torch_fwdad.sparse_ad.evaluation.compiled import CompiledOrEager
from torch_fwdad.sparse_ad.evaluation.decompression import decompression_for
from torch_fwdad.sparse_ad.products import hvp_products, jvp_products, one_hot_seeds, vjp_products


class PreparedEvaluation:
    """The colouring stage's result plus what evaluation builds from it once: the decompression's
    index tensors, the seeds and the output's index buffers (per dtype, device and format), and
    compiled evaluations (per function). A call then does products + gathers only."""

    def __init__(self, colored: ColoredPattern, detected=False):
        self.colored = colored
        self.decompression = decompression_for(colored)
        self.detected = detected
        self.checked = False
        self.out_shape = None  # known after the first evaluation
        self._seeds, self._assemblies = {}, {}
        self._compiled = {}  # func -> its compiled evaluation (which holds func anyway)

    @property
    def pattern(self):
        return self.colored.pattern

    @property
    def coloring(self):
        return self.colored.coloring

    def seeds(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        if key not in self._seeds:
            self._seeds[key] = one_hot_seeds(self.coloring.colors, self.coloring.num_colors, like)
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

    def products(self, flat_func, like, chunk_size):
        """x_flat -> (compressed products, output shape): the coloured JVPs, VJPs or HVPs the
        mode asks for, closing over tensors and functions only (what torch.compile guards on)."""
        mode, seeds, rows = self.colored.mode, self.seeds(like), self.pattern.shape[0]

        def evaluate(x_flat):
            compressed, out_shape = _products(mode, flat_func, x_flat, seeds, chunk_size)
            if mode in ("column", "row") and math.prod(out_shape) != rows:
                raise ValueError(f"sparsity pattern has {rows} rows but func returns "
                                 f"{math.prod(out_shape)} values (shape {out_shape})")
            return compressed, out_shape
        return evaluate

    def compiled_products(self, func, flat_func, like, chunk_size, backend):
        """torch.compile of `products(...)` for this function, made at its first use (chunk_size included).

        The decompression stays eager: one index_select (direct) or two and a cumsum
        (substitution) on O(nnz) entries. Compiled into the same program, inductor's gathers
        measured slower than eager index_select, and slowed the products down as well
        (benchmarks/bench_sparse.py, 64x64 Laplacian and arrowhead Hessians)."""
        if func not in self._compiled:
            self._compiled[func] = CompiledOrEager(
                self.products(flat_func, like, chunk_size), backend, owned=(self.seeds(like),),
                func=flat_func, run_over=lambda f: self.products(f, like, chunk_size))
        return self._compiled[func]

    def values(self, compressed):
        """The pattern's values in CSR order from the compressed products: gathers with index
        tensors built at preparation, so O(nnz) work per call."""
        return self.decompression.values(compressed)


def _products(mode, flat_func, x_flat, seeds, chunk_size):
    """(compressed, output shape): one product per colour, as the mode says."""
    if mode == "row":
        compressed, out_shape = vjp_products(flat_func, x_flat, lambda out: seeds.to(out.dtype), chunk_size)
        return compressed, tuple(out_shape)
    if mode == "column":
        if not len(seeds):  # an empty pattern: no product, but the output shape is still needed
            with torch.no_grad():
                out = flat_func(x_flat)
            return out.new_zeros(0, *out.shape), tuple(out.shape)
        compressed = jvp_products(flat_func, x_flat, seeds, chunk_size)
        return compressed, tuple(compressed.shape[1:])
    if not len(seeds):  # star / acyclic: the Hessian of a scalar function
        return x_flat.new_zeros(0, len(x_flat)), ()
    return hvp_products(flat_func, x_flat, seeds, chunk_size), ()
