"""Attention: fused scaled-dot-product kernels, the CPU flash backward, masked softmax.

Notation for one query row: s = scale·q kᵀ + mask, P = softmax(s) = exp(s − lse),
O = P v. With ṡ = scale·(q̇ kᵀ + q k̇ᵀ) + ṁask the tangents are

    l̇se = rowsum(P ⊙ ṡ)                      (= c)
    Ȯ   = (P ⊙ ṡ) v − c·O + P v̇

The fused kernels never materialise P for the whole sequence, and neither do these
formulas: they walk over tiles of (batch entries, heads, query rows), rebuilding P for
one tile from the logsumexp the kernel returned (no softmax statistics are recomputed),
so the extra memory is one tile of about BLOCK_ELEMENTS scores (`tile_sizes`) per thread.

Each tile costs few ops (every op is a parallel region that waits for its slowest
thread: on a busy machine, regions cost more than their work): P from one matmul and
one exp, ṡ from one matmul, P ⊙ ṡ, and two matmuls with [v, 1] and [v̇, 0] whose last
column is l̇se. When nothing outside can differentiate the rule (values only), the tiles
are smaller (`cache_tile_sizes`) and written in place into one buffer a thread
(`_terms_in_cache_tiles`: out= matmuls, exp2, one product with [ṡ ⊙ P, P]), taken by
worker threads with one intra-op thread each (`_run_on_workers`), with no barrier
between ops; or, when the optional C++ tile loop is built (attention_tiles), by one op
in one parallel region (`_output_tangent_in_cpp`). The larger blockwise tiles remain for
outer derivatives.

Layout: tensors are (B, H, L, E). Grouped-query attention (key/value with Hk heads, query
with H = G·Hk heads, as the CPU kernel receives them under enable_gqa) repeats key/value
heads once per call (_repeat_kv_heads), so that every product is a plain batched matmul.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import attention_tiles
from ._common import (outer_derivative_possible, outer_transforms_around, plain_values, requires_grad_at_any_level,
                      sum_tangents, unwrapped)

__all__ = [
    "BOTTOM_RIGHT",
    "attention_jvp",
    "cudnn_attention_forward_jvp",
    "efficient_attention_forward_jvp",
    "flash_attention_cpu_backward_jvp",
    "flash_attention_forward_jvp",
    "masked_softmax_jvp",
]

# Elements of one (batch × heads × query rows × keys) tile; 8 MB in float32: large
# enough for efficient batched matmuls, small next to the L×S matrices of all heads.
BLOCK_ELEMENTS = 1 << 21

# Where the causal mask's diagonal starts: at the first key (top left, as
# F.scaled_dot_product_attention), or so that the last query sees the last key (bottom
# right, as the flash kernels of other devices and the efficient kernel's mask type 2).
TOP_LEFT, BOTTOM_RIGHT = "top_left", "bottom_right"


class AttentionInputs(NamedTuple):
    """Query, key, value and optional additive mask of one attention call: its primals, or
    their tangents (None: a zero tangent). Formulas pass plain tuples in this order."""

    query: torch.Tensor | None
    key: torch.Tensor | None
    value: torch.Tensor | None
    mask: torch.Tensor | None = None


class FlashBackwardInputs(NamedTuple):
    """The tensor inputs of the CPU flash backward kernel: primals, or their tangents (None: zero)."""

    grad_out: torch.Tensor | None
    query: torch.Tensor | None
    key: torch.Tensor | None
    value: torch.Tensor | None
    out: torch.Tensor | None
    lse: torch.Tensor | None
    mask: torch.Tensor | None = None


def tile_sizes(batch: int, heads: int, queries: int, keys: int, threads: int = 1) -> tuple[int, int, int]:
    """(batch entries, heads, query rows) of one tile of about BLOCK_ELEMENTS scores.

    Query rows first, as many as fit while the tile still holds one matrix per thread
    (batched matmuls split their batch over threads; fewer rows make slower matmuls: at
    L=4096, blocks of 32 rows over all heads ran the rule 1.9x slower), then heads, then
    batch entries.
    """
    matrices = min(batch * heads, threads)
    rows = max(1, min(queries, BLOCK_ELEMENTS // (keys * matrices)))
    tile_heads = min(heads, max(1, BLOCK_ELEMENTS // (batch * rows * keys)))
    tile_batch = min(batch, max(1, BLOCK_ELEMENTS // (tile_heads * rows * keys)))
    return tile_batch, tile_heads, rows


# Scores of one tile computed in place (_terms_in_cache_tiles): its P and ṡ (2 MB in
# float32) stay in cache between the matmuls that write them and the passes that read
# them back. Measured best of 2^17..2^20 at L=S=1024 on 1 and 2 threads: smaller tiles
# repeat the GEMM packing of the keys and values on every call.
CACHE_TILE_ELEMENTS = 1 << 18
USE_CACHE_TILES = True


def cache_tile_sizes(heads: int, queries: int, keys: int) -> tuple[int, int]:
    """(heads, query rows) of one in-place tile of about CACHE_TILE_ELEMENTS scores: a
    block of one head's query rows, or whole heads when one head's scores fit (the tile's
    outputs are then one contiguous block of the result)."""
    rows = max(1, min(queries, CACHE_TILE_ELEMENTS // max(keys, 1)))
    tile_heads = 1 if rows < queries else min(heads, max(1, CACHE_TILE_ELEMENTS // (queries * max(keys, 1))))
    return tile_heads, rows


def _matmul_threads() -> int:
    return torch.get_num_threads()


# ------------------------------------------------------------------ tiles on worker threads

USE_TILE_WORKERS = True
_tile_workers: tuple[int, ThreadPoolExecutor] | None = None
_tile_workers_lock = threading.Lock()


def _tile_pool(count: int) -> ThreadPoolExecutor:
    """`count` worker threads, each running torch ops on one intra-op thread.

    torch.set_num_threads(1) in a worker sets that thread's OpenMP and MKL counts, and
    also the process-wide default that threads started later inherit: every worker is
    started at once (a barrier), then the caller's count is set back as the default.
    """
    global _tile_workers
    with _tile_workers_lock:
        if _tile_workers is None or _tile_workers[0] != count:
            if _tile_workers is not None:
                _tile_workers[1].shutdown(wait=False)
            threads = torch.get_num_threads()
            pool = ThreadPoolExecutor(count, thread_name_prefix="torch_fwdad_tiles",
                                      initializer=torch.set_num_threads, initargs=(1,))
            started = threading.Barrier(count)
            list(pool.map(lambda _: started.wait(), range(count)))
            torch.set_num_threads(threads)
            _tile_workers = (count, pool)
        return _tile_workers[1]


def _forget_tile_workers():
    global _tile_workers, _tile_workers_lock
    _tile_workers, _tile_workers_lock = None, threading.Lock()  # a forked child has no worker threads


os.register_at_fork(after_in_child=_forget_tile_workers)


def _workers_can_run(*tensors) -> bool:
    """True when worker threads would compute what this thread computes (plain_values),
    with several threads."""
    return USE_TILE_WORKERS and torch.get_num_threads() >= 2 and plain_values(*tensors)


def _enough_tiles_for_workers(query, key, in_cache: bool = False) -> bool:
    """At least two tiles a thread: fewer would leave a worker idle (one thread doing the
    work of all), and intra-op parallelism splits each op instead.

    in_cache: tiles of cache_tile_sizes (_terms_in_cache_tiles), else of tile_sizes.
    """
    B, H, L, S = query.size(0), query.size(1), query.size(-2), key.size(-2)
    if B * H * L * S == 0:
        return False
    threads = torch.get_num_threads()
    if in_cache:
        heads, rows = cache_tile_sizes(H, L, S)
        return B * math.ceil(H / heads) * math.ceil(L / rows) >= 2 * threads
    batch, heads, rows = tile_sizes(B, H, L, S, _matmul_threads())
    return math.ceil(B / batch) * math.ceil(H / heads) * math.ceil(L / rows) >= 2 * threads


def _run_on_workers(compute, tiles):
    """compute over tiles on worker threads: results in order.

    Each tile runs its ops on one thread, and a worker takes the next tile when it is
    done: on a busy machine, a worker that the system deschedules delays its own tile
    only. Intra-op parallelism instead splits every op over all threads and waits at
    the end of each for the slowest; with many ops a tile, those waits dominated (a JVP
    3.3x slower at 2 threads than at 1 with one other process busy).
    """
    return list(_tile_pool(torch.get_num_threads()).map(compute, tiles))


@dataclass(frozen=True)
class Tile:
    """Batch entries, heads and query rows of one block of the L×S problem."""

    batch: slice
    heads: slice
    rows: slice


def _slices(size: int, step: int):
    return [slice(start, min(start + step, size)) for start in range(0, size, step)]


# ------------------------------------------------------------------ small tangent algebra


def _mm(a, b):
    return None if a is None or b is None else a @ b


def _mul(a, b):
    return None if a is None or b is None else a * b


def _rowsum(t):
    return None if t is None else t.sum(-1, keepdim=True)


def _transposed(t):
    return None if t is None else t.mT


def _matmul(a, b, into=None, accumulate=False, alpha=1.0):
    """alpha·a @ b for (..., R, E)·(..., E, N) blocks, written over `into` (or added to it).

    into: a tensor of the result's shape. Fresh multi-megabyte blocks cost page faults
    on every allocation (glibc returns them to the system), a third of the rule's time
    when every block was new.
    """
    shape = (*a.shape[:-1], b.size(-1))
    if into is None or into.shape != shape:
        return (a if alpha == 1 else a * alpha) @ b
    flat = into.view(-1, *shape[-2:])
    return flat.baddbmm_(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]),
                         beta=1 if accumulate else 0, alpha=alpha).view(shape)


# ------------------------------------------------------------------ the problem, grouped


def _repeat_kv_heads(t, heads):
    """(B, Hk, S, E) -> (B, H, S, E), each key/value head serving H / Hk query heads.

    One copy under grouped-query attention (none otherwise), so that every product below
    is a plain batched matmul: broadcasting key over a group dimension makes matmul copy
    it once per block instead.
    """
    if t is None or t.size(1) == heads:
        return t
    if heads % t.size(1) != 0:
        raise RuntimeError("torch_fwdad: query heads must be a multiple of key/value heads")
    B, Hk = t.shape[:2]
    return t.unsqueeze(2).expand(B, Hk, heads // Hk, *t.shape[2:]).reshape(B, heads, *t.shape[2:])


def _sum_kv_groups(t, kv_heads):
    """Inverse bookkeeping of _repeat_kv_heads for gradients: sum each group of query heads."""
    if t is None or t.size(1) == kv_heads:
        return t
    return t.reshape(t.size(0), kv_heads, t.size(1) // kv_heads, *t.shape[2:]).sum(2)


def _as_4d(mask):
    while mask is not None and mask.dim() < 4:
        mask = mask.unsqueeze(0)
    return mask


class _Attention:
    """Query, key, value (key/value heads repeated) and optional additive mask, by tile."""

    def __init__(self, query, key, value, mask, scale, is_causal, alignment=TOP_LEFT, lse=None):
        heads = query.size(1)
        # contiguous once: every tile then flattens them to (batch·heads, rows, E) as views
        self.q = query.contiguous()
        self.k, self.v = _repeat_kv_heads(key, heads).contiguous(), _repeat_kv_heads(value, heads).contiguous()
        self.mask = _as_4d(mask)
        self.scale = query.size(-1) ** -0.5 if scale is None else scale
        self.B, self.H, self.L, self.S = query.size(0), heads, query.size(-2), key.size(-2)
        self.causal_offset = None if not is_causal else (self.S - self.L if alignment == BOTTOM_RIGHT else 0)
        self.empty = self.B * self.H * self.L * self.S == 0  # no scores: every tangent is zero
        self._k_ones = None
        # [q, −lse] for every query row at once (no mask: −lse rides in the logits' matmul)
        self._lse, self._q_shifted = lse, None

    def shifted_query(self):
        """[q, −lse] for every query row at once (built on first use)."""
        if self._q_shifted is None:
            self._q_shifted = torch.cat([self.q, -self._lse.narrow(-1, 0, self.L).unsqueeze(-1)], -1)
        return self._q_shifted

    def scaled_k_and_ones(self, tile: Tile):
        """The tile's [k·scale, 1] along features (built once for every tile)."""
        if self._k_ones is None:
            self._k_ones = torch.cat([self.k * self.scale, self.k.new_ones(*self.k.shape[:-1], 1)], -1)
        return self.part(self._k_ones, tile, None)

    def scaled_k(self, tile: Tile):
        return self.scaled_k_and_ones(tile)[..., :-1]

    def tiles(self):
        """(batch, heads, rows) splits of the problem (tile_sizes), batch-major then heads."""
        batch, heads, rows = tile_sizes(self.B, self.H, self.L, self.S, _matmul_threads())
        return _slices(self.B, batch), _slices(self.H, heads), _slices(self.L, rows)

    def part(self, t, tile: Tile, row_dim: int | None = -2):
        """t's share of a tile: batch and heads (dims 0, 1), query rows along `row_dim`.

        A broadcast (size-1) or wholly covered dimension stays as it is: narrow, and no
        view at all for a single tile, since the legacy vmap of gradcheck's batched check
        has no batching rule for the alias a full slice makes.
        """
        if t is None:
            return t
        for dim, span in ((0, tile.batch), (1, tile.heads), (row_dim, tile.rows)):
            if dim is None or t.size(dim) == 1:
                continue
            start, stop, _ = span.indices(t.size(dim))
            if stop - start != t.size(dim):
                t = t.narrow(dim, start, stop - start)
        return t

    def logits(self, tile: Tile, shift=None, into=None):
        """s = scale·q kᵀ + mask (−inf where causally hidden) + shift, for one tile.

        shift: the tile's −lse rows (R, 1), or "lse" for the lse given to the constructor.
        into: a tile from an earlier call to write over (see attention_jvp).
        """
        if isinstance(shift, str):
            # −lse rides in the matmul as one more feature, [q, −lse]·[k·scale, 1]ᵀ: no pass
            # over the tile to add it (baddbmm would first copy it into every column)
            s = _matmul(self.part(self.shifted_query(), tile), self.scaled_k_and_ones(tile).mT, into=into)
            return self._hide_causal(s, tile)
        q, k = self.part(self.q, tile), self.part(self.k, tile, None)
        offset = sum_tangents(self.part(self.mask, tile), shift)
        if offset is None:
            s = _matmul(q, self.scaled_k(tile).mT, into=into)
        elif offset is shift and shift.size(-1) == 1:
            q_shift = torch.cat([q, shift.expand(*q.shape[:-1], 1)], -1)
            s = _matmul(q_shift, self.scaled_k_and_ones(tile).mT, into=into)
        else:  # the offset added by the matmul itself: no separate pass over the tile
            B, H, R, E = q.shape
            offset = offset.expand(B, H, R, offset.size(-1)).reshape(B * H, R, offset.size(-1))
            s = torch.baddbmm(offset, q.reshape(B * H, R, E), k.reshape(B * H, self.S, E).mT, alpha=self.scale)
            s = s.view(B, H, R, self.S)
        return self._hide_causal(s, tile)

    def _hide_causal(self, s, tile: Tile):
        if self.causal_offset is not None:
            s = s.masked_fill_(self._hidden_by_causal(tile.rows, s.device), -math.inf)
        return s

    def scores(self, tile: Tile, lse, lse_is_constant=False, into=None):
        """P = exp(s − lse) for one tile (lse: the tile's rows of it; the whole lse given
        to the constructor, when there was one, is used instead unless lse_is_constant).

        lse_is_constant: the lse given is cut from the inputs for an outer derivative
        (see _lse_cut_from_inputs). P is then built as P₀ − P₀·δ with P₀ = exp(s − lse)
        and δ = rowsum(P₀ ⊙ (s − s)) with P₀ and the second s detached: δ is zero, so the
        value is unchanged, and its derivative rowsum(P ⊙ ṡ) is lse's.
        """
        if lse_is_constant:
            s = self.logits(tile)
            p = torch.exp(s - lse.detach().unsqueeze(-1))
            shift = torch.where(p.detach() > 0, s - s.detach(), torch.zeros_like(s))  # -inf - -inf is NaN
            delta = (p.detach() * shift).sum(-1, keepdim=True)
            return p - p * delta
        # in place on the fresh logits (exp_ saves its result, nothing is overwritten that
        # a derivative needs), −lse added by the matmul: one pass over the tile
        shift = "lse" if self._lse is not None and self.mask is None else -lse.unsqueeze(-1)
        return self.logits(tile, shift=shift, into=into).exp_()

    def score_factors(self, q_t, k_t):
        """(a, b) with scale·(q̇ kᵀ + q k̇ᵀ) = a bᵀ for the whole problem (None: no tangent); k_t repeated.

        [q̇, q]·[k·scale, k̇·scale]ᵀ when both carry tangents: one matmul a tile instead of
        two (each matmul is a parallel region, and every region waits for its slowest thread:
        on a busy machine, regions cost more than their work). The copies are O(L·E).
        """
        if q_t is None and k_t is None:
            return None
        scaled_k = self.scaled_k_and_ones(Tile(slice(None), slice(None), slice(None)))[..., :-1]
        if k_t is None:
            return q_t, scaled_k
        if q_t is None:
            return self.q, k_t * self.scale
        return torch.cat([q_t, self.q], -1), torch.cat([scaled_k, k_t * self.scale], -1)

    def score_tangent(self, tile: Tile, factors, mask_t, into=None):
        """ṡ for one tile from score_factors (None when q, k and mask carry no tangent)."""
        ds = None if factors is None else _matmul(self.part(factors[0], tile), self.part(factors[1], tile, None).mT,
                                                  into=into)
        if mask_t is not None:
            ds = sum_tangents(ds, self.part(mask_t, tile))
        return ds

    def visible_keys(self, rows: slice) -> int:
        """How many leading keys some query row of `rows` sees (all S without causal masking)."""
        if self.causal_offset is None:
            return self.S
        return min(self.S, rows.stop + self.causal_offset)

    def _hidden_by_causal(self, rows, device):
        allowed = torch.ones(rows.stop - rows.start, self.S, dtype=torch.bool, device=device)
        return ~allowed.tril(rows.start + self.causal_offset)


def _refuse_dropout(dropout_p):
    if dropout_p > 0:
        raise RuntimeError(
            "torch_fwdad: forward-mode AD through fused attention with dropout_p > 0 is not "
            "supported: the fused kernel draws its dropout mask internally and does not return "
            "it, so the tangent cannot use the same mask as the primal. Run the JVP pass with "
            "dropout_p=0 (e.g. model.eval(), or dropout_p=0.0 in scaled_dot_product_attention), "
            "or call torch.nn.attention.sdpa_kernel(SDPBackend.MATH) to use the decomposed math path"
        )


def _logsumexp_rows(problem: _Attention, tile: Tile):
    """Logsumexp of one tile's scores, for kernels that were not asked to return it."""
    lse = torch.logsumexp(problem.logits(tile), dim=-1)
    return torch.where(torch.isneginf(lse), 0.0, lse)  # fully masked rows: P = 0, as the kernels


def attention_jvp(primals, tangents, out, lse, *, scale, is_causal, dropout_p=0.0, alignment=TOP_LEFT):
    """(Ȯ, l̇se) of a fused attention kernel whose tensors are (B, H, L, E), from its own out and lse.

    primals, tangents: AttentionInputs (plain tuples in its order do). `lse` may be None
    or unusable (a kernel asked not to compute it): it is then recomputed blockwise. l̇se
    comes in the layout of the kernel's own logsumexp (see _fit_logsumexp).
    """
    primals, tangents = AttentionInputs(*primals), AttentionInputs(*tangents)
    out_t, lse_t = _attention_tangents(primals, tangents, out, lse, scale, is_causal, dropout_p, alignment)
    return out_t, _fit_logsumexp(lse_t, lse)


def _attention_tangents(primals: AttentionInputs, tangents: AttentionInputs, out, lse, scale, is_causal, dropout_p,
                        alignment):
    """attention_jvp with l̇se as (B, H, L)."""
    query, key, value, attn_mask = primals
    query_t, key_t, value_t, attn_mask_t = tangents
    _refuse_dropout(dropout_p)
    # each tile's P and ṡ are written over the previous tile's, unless an outer
    # derivative may have saved them
    reuse = not outer_derivative_possible(query, key, value, attn_mask, query_t, key_t, value_t, attn_mask_t)
    everything = (query, key, value, attn_mask, query_t, key_t, value_t, attn_mask_t, out, lse)
    # values only: tiles written in place, by the C++ tile loop (attention_tiles) or in Python
    # (_terms_in_cache_tiles, on worker threads or on one thread). ṡ is computed divided by
    # the scale: a zero scale takes the blockwise tiles.
    values_only = (USE_CACHE_TILES and reuse and _lse_usable(lse, query) and lse.dim() == 3
                   and plain_values(*everything) and scale != 0)
    in_cpp = values_only and attention_tiles.extension.active
    on_workers = (not in_cpp and reuse and _enough_tiles_for_workers(query, key, values_only)
                  and _workers_can_run(*everything))
    # (so does a problem of one in-place Python tile: building the stacked values costs more than it saves)
    in_cache = values_only and not in_cpp and (on_workers or torch.get_num_threads() == 1) and (
        query.numel() // max(query.size(-1), 1) * key.size(-2) > CACHE_TILE_ELEMENTS)
    compute = torch.promote_types(query.dtype, torch.float32)  # bf16/fp16 kernels keep fp32 stats
    # worker threads see no torch.func levels; nor do buffers written in place
    plain = unwrapped if on_workers or in_cache or in_cpp else (lambda t: t)
    cast = (lambda t: None if t is None else plain(t).to(compute).contiguous())
    heads = query.size(1)
    q_t, k_t, v_t = cast(query_t), _repeat_kv_heads(cast(key_t), heads), _repeat_kv_heads(cast(value_t), heads)
    mask_t, out_c = _as_4d(cast(attn_mask_t)), cast(out)
    lse_c = cast(lse) if _lse_usable(lse, query) else None
    lse_is_constant = lse_c is not None and _lse_cut_from_inputs(lse, query, key, attn_mask)
    problem = _Attention(cast(query), cast(key), cast(value), cast(attn_mask), scale, is_causal, alignment,
                         lse=None if lse_is_constant else lse_c)
    if problem.empty:
        return torch.zeros_like(out), out_c.new_zeros(out_c.shape[:-1])
    if _linear_in_value_only(problem, q_t, k_t, mask_t, v_t):
        # Ȯ = P v̇ is attention itself applied to v̇: one fused call, the kernel's speed
        value_term = F.scaled_dot_product_attention(problem.q, problem.k, v_t, attn_mask=problem.mask,
                                                    is_causal=problem.causal_offset == 0, scale=problem.scale)
        return value_term.to(out.dtype), None
    has_score_tangent = q_t is not None or k_t is not None or mask_t is not None
    if in_cpp and not lse_is_constant:
        out_t, lse_t = _output_tangent_in_cpp(problem, lse_c, AttentionInputs(q_t, k_t, v_t, mask_t), out_c)
        return out_t.to(out.dtype), lse_t
    if in_cache and not lse_is_constant:
        terms, row_sums = _terms_in_cache_tiles(problem, lse_c, AttentionInputs(q_t, k_t, v_t, mask_t),
                                                run_tiles=_run_on_workers if on_workers else None)
        return _output_tangent(terms, row_sums, out_c, out.dtype)
    factors = problem.score_factors(q_t, k_t)
    # [v, 1]: the product with P ⊙ ṡ gives its row sums c as one more column; [v̇, 0] keeps it
    values = _with_column(problem.v, 1.0) if has_score_tangent else None
    values_t = _with_column(v_t, 0.0) if has_score_tangent else v_t
    buffers = threading.local()  # one P and one ṡ tile per thread, written over tile after tile

    def tile_tangents(tile):
        lse_rows = problem.part(lse_c, tile, -1) if lse_c is not None else _logsumexp_rows(problem, tile)
        p = problem.scores(tile, lse_rows, lse_is_constant, into=getattr(buffers, "p", None))
        ds = problem.score_tangent(tile, factors, mask_t, into=getattr(buffers, "ds", None))
        if reuse:
            buffers.p, buffers.ds = p, ds
        # ds from the matmul is fresh: multiply in place (no new tile); a mask tangent
        # alone is the caller's tensor, maybe broadcast
        p_ds = ds.mul_(p) if factors is not None else _mul(p, ds)
        return (_tile_output_terms(p, p_ds, problem.part(values, tile, None), problem.part(values_t, tile, None)),)

    (terms,) = _stitch(tile_tangents, *problem.tiles(), over_rows=("cat",),
                       run_tiles=_run_on_workers if on_workers else None)
    if not has_score_tangent:
        return terms.to(out.dtype), None
    return _output_tangent(terms[..., :-1], terms[..., -1], out_c, out.dtype)


# Query rows of one work item of the C++ tile loop, and at most this many scores (8 MB of P
# and ṡ a thread in float32). Rows, not scores, set the matmuls' speed: CPU time of the loop
# at L=S=1024, 2048, 4096 (1 thread) was least with 128 rows (within noise of 256); 32 rows
# (2^17 scores at L=4096) took 1.7x as long.
CPP_TILE_ROWS = 128
CPP_TILE_ELEMENTS = 1 << 21


def _output_tangent_in_cpp(problem: _Attention, lse, tangents: AttentionInputs, out):
    """(Ȯ, l̇se) by the C++ tile loop (attention_tiles): values only, one parallel region.

    tangents: q̇, k̇, v̇ (key/value heads repeated) and ṁask, as the problem's tensors.
    """
    B, H, L, S = problem.B, problem.H, problem.L, problem.S
    q_t, k_t, v_t, mask_t = tangents

    def full(mask):  # (B, H, L, S) views: broadcast dimensions get stride 0, no copy
        return None if mask is None else mask.expand(B, H, L, S)

    def dense(t):  # (heads repeated by a broadcasting reshape are views: one copy here)
        return None if t is None else t.contiguous()

    rows = max(1, min(L, CPP_TILE_ROWS, CPP_TILE_ELEMENTS // max(S, 1)))
    return attention_tiles.output_tangent(problem.q, problem.k, problem.v, out, lse.narrow(-1, 0, L),
                                          full(problem.mask), (dense(q_t), dense(k_t), dense(v_t), full(mask_t)),
                                          problem.scale, problem.causal_offset, rows)


def _output_tangent(terms, row_sums, out, dtype):
    """(Ȯ, l̇se) from the tiles' (P ⊙ ṡ) v + P v̇ (P v̇ alone without ṡ) and c = rowsum(P ⊙ ṡ).

    Ȯ = (P ⊙ ṡ) v + P v̇ − c·O, once for the whole output rather than per tile; l̇se = c.
    """
    if row_sums is None:
        return terms.to(dtype), None
    return torch.addcmul(terms, row_sums.unsqueeze(-1), out, value=-1).to(dtype), row_sums


def _stitch(compute, batches, heads, rows, over_rows=("cat", "cat"), run_tiles=None):
    """compute(tile) -> one tensor (or None) per output, joined back to (B, H, ·, ·).

    Tiles join along batch entries and heads by concatenation; along query rows by
    concatenation ("cat", per-query outputs) or by summation ("sum", per-key outputs such
    as the tangents of key and value gradients). run_tiles(compute, tiles) -> results in
    order (default: one after another in this thread).
    """
    tiles = [Tile(b, h, r) for b in batches for h in heads for r in rows]
    # in this thread, lazily: per-key outputs are summed as they come, not all held at once
    results = iter(run_tiles(compute, tiles)) if run_tiles is not None else (compute(tile) for tile in tiles)

    def join(parts, dim, how="cat"):
        if parts[0] is None or len(parts) == 1:
            return parts[0]
        return torch.cat(parts, dim) if how == "cat" else sum_tangents(*parts)

    def over_rows_of(b, h):
        parts = [next(results) for _ in rows]
        return tuple(join([part[i] for part in parts], 2, how) for i, how in enumerate(over_rows))

    def over(spans, dim, inner):
        parts = [inner(span) for span in spans]
        return tuple(join([part[i] for part in parts], dim) for i in range(len(over_rows)))

    return over(batches, 0, lambda b: over(heads, 1, lambda h: over_rows_of(b, h)))


def _terms_in_cache_tiles(problem: _Attention, lse, tangents: AttentionInputs, run_tiles=None):
    """((P ⊙ ṡ) v + P v̇, c = rowsum(P ⊙ ṡ)) for every query row (c None without ṡ): values
    only (no autograd), written tile by tile into one result.

    tangents: q̇, k̇, v̇ (key/value heads repeated) and ṁask, as the problem's tensors.
    Tiles of cache_tile_sizes, one after another on each thread, each written over the
    previous tile's P and ṡ (one buffer a thread) by out= matmuls and in-place passes: no
    allocation a tile. Under causal masking, keys hidden from every row of a tile are
    skipped. run_tiles: as in _stitch.
    """
    B, H, L, S = problem.B, problem.H, problem.L, problem.S
    q_t, k_t, v_t, mask_t = tangents
    has_score_tangent = q_t is not None or k_t is not None or mask_t is not None
    values = _stacked_values(problem.v, v_t, problem.scale) if has_score_tangent else v_t
    terms = problem.q.new_empty(B, H, L, values.size(-1))
    row_sums = problem.q.new_empty(B, H, L) if has_score_tangent else None
    # ṡ / scale = q̇ kᵀ + q k̇ᵀ: two accumulating products (as fast here as one product of
    # [q̇, q]·[k, k̇]ᵀ, without building those: passes over O(L·E) cost more than it saved)
    score_products = [(a, b) for a, b in ((q_t, problem.k), (problem.q, k_t)) if a is not None and b is not None]
    tile_heads, rows = cache_tile_sizes(H, L, S)
    group = functools.partial(_TileGroup, problem, terms=terms, row_sums=row_sums, values=values,
                              lse=lse * _LOG2_E, score_products=score_products, mask_t=mask_t,
                              with_v_t=v_t is not None)
    tiles = [(group(b, heads), block) for b in range(B) for heads in _slices(H, tile_heads)
             for block in _slices(L, rows)]
    buffers = threading.local()

    def tile_terms(tile):
        tile_group, block = tile
        if getattr(buffers, "scores", None) is None:
            buffers.scores = torch.empty(tile_heads * rows * 2 * S, dtype=terms.dtype)
        tile_group.compute(block, buffers.scores)

    if run_tiles is None:
        for tile in tiles:
            tile_terms(tile)
    else:
        run_tiles(tile_terms, tiles)
    return terms, None if row_sums is None else row_sums.mul_(problem.scale)


_LOG2_E = 1 / math.log(2)


def _stacked_values(v, v_t, scale):
    """scale·v over v̇ along keys (scale·v alone without v̇), one allocation.

    One product with [ṡ/scale ⊙ P, P] side by side gives (ṡ ⊙ P) v + P v̇. (A column of
    ones beside v would give c as well, but a 65-column product cost more than a
    64-column one and a row sum together.)
    """
    S = v.size(-2)
    stacked = v.new_empty(*v.shape[:-2], S if v_t is None else 2 * S, v.size(-1))
    torch.mul(v, scale, out=stacked[..., :S, :])
    if v_t is not None:
        stacked[..., S:, :].copy_(v_t)
    return stacked


class _TileGroup:
    """The blocks of one batch entry and group of heads that its tiles read and write,
    cut once: a tile then only narrows query rows (and keys, when causal).

    P = 2^(log₂e·(s − lse)): exp2 costs half of exp on CPU; log₂e·scale rides in the
    matmul's alpha and log₂e·mask in its beta. ṡ is computed divided by scale (scale is
    in the stacked values and applied to c once).
    """

    def __init__(self, problem: _Attention, b, heads, *, terms, row_sums, values, lse, score_products, mask_t,
                 with_v_t):
        def cut(t):  # batch entry b and these heads, kept broadcast where t broadcasts
            if t is None:
                return None
            t = t[b if t.size(0) > 1 else 0]
            return t if t.size(0) == 1 else t[heads]

        self.problem, self.S, self.with_v_t = problem, problem.S, with_v_t
        self.terms, self.row_sums, self.values = cut(terms), cut(row_sums), cut(values)
        self.q, self.k_t = cut(problem.q), cut(problem.k).mT
        self.neg_lse = cut(lse.narrow(-1, 0, problem.L).unsqueeze(-1)).neg()
        self.mask, self.mask_t = cut(problem.mask), cut(mask_t)
        self.score_products = [(cut(query), cut(key).mT) for query, key in score_products]

    def rows_of(self, t, block: slice, keys: int):
        """t's query rows `block` (unless broadcast over rows), and its first `keys` keys."""
        if t.size(-2) > 1:
            t = t[:, block]
        return t[..., :keys] if t.size(-1) == self.S and keys < self.S else t

    def compute(self, block: slice, buffer):
        """Write the tile's (P ⊙ ṡ) v + P v̇ (P v̇ alone without ṡ) and rowsum(P ⊙ ṡ)/scale."""
        out = self.terms[:, block]
        keys = self.problem.visible_keys(block)
        if keys <= 0:  # every key hidden: the output is constant
            out.zero_()
            if self.row_sums is not None:
                self.row_sums[:, block].zero_()
            return
        heads, rows = out.shape[:2]
        S, scale = self.S, self.problem.scale
        # ṡ and P side by side in one buffer, for one product with the stacked values
        both = buffer[:heads * rows * 2 * keys].view(heads, rows, 2 * keys)
        ds, p = both[..., :keys], both[..., keys:]
        k_t = self.k_t if keys == S else self.k_t[..., :keys]
        if self.mask is None:
            torch.baddbmm(self.neg_lse[:, block], self.q[:, block], k_t, alpha=scale * _LOG2_E, out=p)
        else:
            torch.baddbmm(self.rows_of(self.mask, block, keys), self.q[:, block], k_t, beta=_LOG2_E,
                          alpha=scale * _LOG2_E, out=p)
            p.add_(self.neg_lse[:, block])
        if self.problem.causal_offset is not None:
            first_hidden = block.start + self.problem.causal_offset + 1  # key, for the tile's first row
            if first_hidden < keys:
                p.masked_fill_(torch.ones(rows, keys, dtype=torch.bool).triu_(first_hidden), -math.inf)
        p.exp2_()
        if self.row_sums is None:  # no ṡ: P v̇ alone
            torch.bmm(p, self.values[:, :keys], out=out)
            return
        if self.score_products:
            for i, (query, key_t) in enumerate(self.score_products):
                key_t = key_t if keys == S else key_t[..., :keys]
                if i == 0:
                    torch.bmm(query[:, block], key_t, out=ds)
                else:
                    ds.baddbmm_(query[:, block], key_t)
            if self.mask_t is not None:
                ds.add_(self.rows_of(self.mask_t, block, keys), alpha=1 / scale)
        else:
            ds.copy_(self.rows_of(self.mask_t, block, keys)).div_(scale)
        torch.sum(ds.mul_(p), -1, out=self.row_sums[:, block])
        if not self.with_v_t:
            torch.bmm(ds, self.values[:, :keys], out=out)
        elif keys == S:
            torch.bmm(both, self.values, out=out)
        else:  # fewer keys than the stacked values hold: two products
            torch.bmm(ds, self.values[:, :keys], out=out)
            out.baddbmm_(p, self.values[:, S:S + keys])


def _linear_in_value_only(problem: _Attention, q_t, k_t, mask_t, v_t):
    """True when only v carries a tangent and F.scaled_dot_product_attention states the problem.

    (It takes a mask or top-left causal masking, not both, and no bottom-right alignment.)
    """
    only_value = q_t is None and k_t is None and mask_t is None and v_t is not None
    causal = problem.causal_offset is not None
    return only_value and (not causal or (problem.causal_offset == 0 and problem.mask is None))


def _with_column(t, fill):
    """t (..., S, E) with one more feature column of `fill` (None stays None)."""
    return None if t is None else torch.cat([t, t.new_full((*t.shape[:-1], 1), fill)], -1)


def _tile_output_terms(p, p_ds, values, values_t):
    """(P ⊙ ṡ)[v, 1] + P[v̇, 0] for one tile (P v̇ alone without ṡ), accumulated in one result.

    The last column holds c = rowsum(P ⊙ ṡ) when there is ṡ: no pass over the tile for it.
    """
    o = None if p_ds is None else p_ds @ values
    if values_t is not None:
        o = p @ values_t if o is None else _matmul(p, values_t, into=o, accumulate=True)
    return o


def _lse_cut_from_inputs(lse, *inputs):
    """True when an outer derivative may see the kernel's lse as a constant.

    PyTorch's autograd declares the fused kernels' logsumexp non-differentiable, so reverse
    mode over this formula (grad of a jvp, plain or through torch.func) would treat it as
    a constant. Outer torch.func transforms are invisible from here except by their count.
    """
    if any(t is not None and requires_grad_at_any_level(t) for t in inputs) and not requires_grad_at_any_level(lse):
        return True
    return outer_transforms_around()


def _lse_usable(lse, query):
    """True when lse holds (B, H, L) values, possibly with padding after L."""
    return (lse is not None and lse.dim() >= 3 and lse.numel() > 0
            and lse.shape[:2] == query.shape[:2] and lse.size(2) >= query.size(2))


def _fit_logsumexp(lse_tangent, lse):
    """Bring a (B, H, L) tangent to the shape of a kernel's logsumexp output.

    Handles padded layouts (the efficient kernel pads L to a multiple of 32; the padding
    is not a function of the inputs and gets a zero tangent), trailing unit dimensions
    (cuDNN's (B, H, L, 1)), and an empty logsumexp (not requested: no tangent).
    """
    if lse_tangent is None or lse is None or (lse.numel() == 0 and lse_tangent.numel() > 0):
        return None  # (an empty logsumexp of a non-empty batch was not requested)
    if lse.dim() == 3 and lse.size(2) > lse_tangent.size(2):
        lse_tangent = torch.nn.functional.pad(lse_tangent, (0, lse.size(2) - lse_tangent.size(2)))
    return lse_tangent.reshape(lse.shape).to(lse.dtype)


def _attention_jvp_sequence_first(primals, tangents, out, lse, scale, is_causal, dropout_p, alignment):
    """attention_jvp for the raw kernels whose tensors are (B, L, H, E): sequence before heads."""
    def swap(t):  # (B, L, H, E) <-> (B, H, L, E)
        return None if t is None else t.transpose(1, 2)

    def heads_first(inputs):  # the additive mask is (B, H, L, S) already
        query, key, value, mask = AttentionInputs(*inputs)
        return AttentionInputs(swap(query), swap(key), swap(value), mask)

    out_t, lse_t = attention_jvp(heads_first(primals), heads_first(tangents), swap(out), lse,
                                 scale=scale, is_causal=is_causal, dropout_p=dropout_p, alignment=alignment)
    return swap(out_t), lse_t


def _refuse_unmodelled_options(op_name, options):
    """Raise for kernel options the formulas do not model (packed varlen, windows, ...)."""
    given = sorted(name for name, value in options.items() if value is not None)
    if given:
        raise NotImplementedError(
            f"torch_fwdad: no forward-mode formula for {op_name} with {', '.join(given)}; only dense "
            f"batches without packed sequences, sliding windows, ALiBi or paged KV are supported"
        )


# ------------------------------------------------------------------ CPU flash backward


def flash_attention_cpu_backward_jvp(primals, tangents, *, scale, is_causal, dropout_p):
    """Tangents of (grad_query, grad_key, grad_value) of the flash backward kernel.

    primals, tangents: FlashBackwardInputs (plain tuples in its order do). The kernel
    treats out and lse as inputs: P = exp(s − lse), D = rowsum(g ⊙ out),
    dS = P ⊙ (g vᵀ − D), grad_q = scale·dS k, grad_k = scale·dSᵀ q, grad_v = Pᵀ g,
    summed over query heads sharing a key/value head. Differentiating each product gives
    the tangents below; this is what forward-over-reverse (Hessian-vector products) uses.
    """
    _refuse_dropout(dropout_p)
    grad_out, query, key, value, out, lse, attn_mask = FlashBackwardInputs(*primals)
    grad_out_t, query_t, key_t, value_t, out_t, lse_t, attn_mask_t = FlashBackwardInputs(*tangents)
    problem = _Attention(query, key, value, attn_mask, scale, is_causal, lse=lse if _lse_usable(lse, query) else None)
    heads, kv_heads = query.size(1), key.size(1)
    k_t, v_t = _repeat_kv_heads(key_t, heads), _repeat_kv_heads(value_t, heads)
    mask_t, scale = _as_4d(attn_mask_t), problem.scale
    if problem.empty:
        return torch.zeros_like(query), torch.zeros_like(key), torch.zeros_like(value)
    factors = problem.score_factors(query_t, k_t)

    def tile_tangents(tile):
        rows_of = (lambda t: problem.part(t, tile))
        keys_of = (lambda t: problem.part(t, tile, None))
        k, v, k_t_tile, v_t_tile = keys_of(problem.k), keys_of(problem.v), keys_of(k_t), keys_of(v_t)
        p = problem.scores(tile, problem.part(lse, tile, -1))
        g_r, g_t_r, o_r, o_t_r, q_r, q_t_r = map(rows_of, (grad_out, grad_out_t, out, out_t, query, query_t))
        lse_t_r = None if lse_t is None else -problem.part(lse_t, tile, -1).unsqueeze(-1)
        p_dot = _mul(p, sum_tangents(problem.score_tangent(tile, factors, mask_t), lse_t_r))
        dp_minus_d = g_r @ v.mT - (g_r * o_r).sum(-1, keepdim=True)
        dp_minus_d_dot = sum_tangents(_mm(g_t_r, v.mT), _mm(g_r, _transposed(v_t_tile)),
                                      _mul(-1, _rowsum(sum_tangents(_mul(g_t_r, o_r), _mul(g_r, o_t_r)))))
        ds = p * dp_minus_d
        ds_dot = sum_tangents(_mul(p_dot, dp_minus_d), _mul(p, dp_minus_d_dot))
        dq_t = _mul(scale, sum_tangents(_mm(ds_dot, k), _mm(ds, k_t_tile)))
        dk_t = _mul(scale, sum_tangents(_mm(_transposed(ds_dot), q_r), _mm(ds.mT, q_t_r)))
        dv_t = sum_tangents(_mm(_transposed(p_dot), g_r), _mm(p.mT, g_t_r))
        return dq_t, dk_t, dv_t

    # query rows split a tile's key-side tangents into partial sums: add them
    dq_t, dk_t, dv_t = _stitch(tile_tangents, *problem.tiles(), over_rows=("cat", "sum", "sum"))
    return dq_t, _sum_kv_groups(dk_t, kv_heads), _sum_kv_groups(dv_t, kv_heads)


# ------------------------------------------------------------------ masked softmax


def masked_softmax_jvp(self_t, result, dim):
    """softmax's tangent y ⊙ (ẋ − Σ y ⊙ ẋ); masked entries have y = 0 and stay 0."""
    dim = -1 if dim is None else dim
    y_dx = result * self_t
    return y_dx - result * y_dx.sum(dim, keepdim=True)


# ------------------------------------------------------------------ raw kernels of other devices


def flash_attention_forward_jvp(primals, tangents, out, lse, *, scale, is_causal, dropout_p, **unmodelled):
    """_flash_attention_forward: (B, L, H, E), causal mask aligned bottom-right as in flash-attn 2.

    primals, tangents: (query, key, value); unmodelled: options that must be None.
    """
    _refuse_unmodelled_options("_flash_attention_forward", unmodelled)
    return _attention_jvp_sequence_first(primals, tangents, out, lse, scale, is_causal, dropout_p, BOTTOM_RIGHT)


def efficient_attention_forward_jvp(primals, tangents, out, lse, *, scale, custom_mask_type, dropout_p, **unmodelled):
    """_efficient_attention_forward: (B, L, H, E); custom_mask_type 0 none, 1 causal top-left, 2 bottom-right.

    primals, tangents: (query, key, value, bias); unmodelled: options that must be None.
    """
    _refuse_unmodelled_options("_efficient_attention_forward", unmodelled)
    alignment = BOTTOM_RIGHT if custom_mask_type == 2 else TOP_LEFT
    return _attention_jvp_sequence_first(primals, tangents, out, lse, scale, custom_mask_type != 0, dropout_p, alignment)


def cudnn_attention_forward_jvp(primals, tangents, out, lse, *, scale, is_causal, dropout_p, **unmodelled):
    """_cudnn_attention_forward: (B, H, L, E) as attention_jvp; unmodelled: options that must be None."""
    _refuse_unmodelled_options("_cudnn_attention_forward", unmodelled)
    return attention_jvp(primals, tangents, out, lse, scale=scale, is_causal=is_causal, dropout_p=dropout_p)
