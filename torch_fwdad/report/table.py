"""Part (b) of the report: torch's own derivatives table and its forward-mode gaps.

An entry of torch's `derivatives.yaml` maps input names to backward formulas and output
names (`result`, `values`, `sign, logabsdet`, ...) to forward formulas; the engine reads
the table (engine/upstream.py: upstream_entries, upstream_forward_table). A key is an input
key when every name in it is an argument of the schema. An entry counts when its
backward differentiates at least one input (`not_implemented(...)` counts: forward-over-
reverse needs those, e.g. _cdist_backward). What is out of reach, and why, comes from
docs/out_of_reach.md, shipped in the package as out_of_reach.json.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.resources
import json
from dataclasses import dataclass

import torch

from torch_fwdad.engine.upstream import upstream_entries, upstream_forward_table

_NOT_KEYS = {"name", "dispatch", "output_differentiability"}
# docs/out_of_reach.md's tables, copied into the package by tools/out_of_reach.py: an
# installed package has no docs/ to read.
OUT_OF_REACH_DATA = "out_of_reach.json"

# Family of an overload, first match wins: (pattern, family).
FAMILIES = (
    ("*_backward*", "backward ops"),
    ("*conv*", "convolution"),
    ("*attention*", "attention"),
    ("*quantize*", "quantization"),
    ("*fused_moving_avg*", "quantization"),
    ("*sparse*", "sparse"),
    ("_to_dense", "sparse"),
    ("_coalesce", "sparse"),
    ("values", "sparse"),
    ("*loss*", "losses"),
    ("*cdist*", "distances"),
    ("*pdist*", "distances"),
    ("_euclidean_dist", "distances"),
    ("*grid_sampler*", "sampling"),
    ("*lstm*", "recurrent"),
    ("*gru*", "recurrent"),
    ("*rnn*", "recurrent"),
    ("*_foreach_*", "foreach"),
    ("*gamma*", "special functions"),
    ("*zeta*", "special functions"),
    ("*softmax*", "softmax"),
    ("*pack_padded*", "recurrent"),
    ("*unique*", "indexing and reductions"),
    ("*index_reduce*", "indexing and reductions"),
    ("*segment_reduce*", "indexing and reductions"),
    ("*embedding*", "indexing and reductions"),
    ("*dropout*", "dropout and noise"),
    ("rrelu*", "dropout and noise"),
    ("*_mm", "matrix products"),
    ("matmul", "matrix products"),
    ("linear", "matrix products"),
    ("*norm*", "normalization"),
    ("*pool*", "pooling"),
    ("*_", "in-place"),
)


@dataclass(frozen=True)
class TableEntry:
    name: str  # "aten::special_zeta.self_scalar", as the sample registry names it
    overload: str  # "special_zeta.self_scalar"
    has_forward: bool
    family: str
    out_of_reach: str | None


def _key_names(key: str) -> list[str]:
    return [part.strip() for part in key.split(",")]


def _formula_keys(entry: dict) -> list[tuple[str, object]]:
    pairs = [(k, v) for k, v in entry.items() if k not in _NOT_KEYS]
    for per_key in (entry.get("dispatch") or {}).values():
        pairs += list((per_key or {}).items())
    return pairs


def _differentiates_an_input(raw: dict) -> bool:
    """Whether torch's backward differentiates some input (not all `non_differentiable`)."""
    arguments = {a.name for a in torch._C.parse_schema("aten::" + raw["name"]).arguments}
    if raw.get("output_differentiability") and not any(raw["output_differentiability"]):
        return False
    return any(formula != "non_differentiable" for key, formula in _formula_keys(raw)
               if all(name in arguments for name in _key_names(key)))


def family_of(overload: str) -> str:
    bare = overload.split(".")[0]
    for pattern, family in FAMILIES:
        if fnmatch.fnmatchcase(bare, pattern):
            return family
    if bare.startswith(("linalg", "_linalg")) or bare in ("cholesky", "geqrf", "ormqr", "triangular_solve"):
        return "linear algebra"
    return "other"


def _out_of_reach(overload: str) -> str | None:
    bare = overload.split(".")[0]
    return next((reason for pattern, reason in out_of_reach_patterns() if fnmatch.fnmatchcase(bare, pattern)), None)


@functools.lru_cache(maxsize=1)
def derivatives_table() -> dict[str, TableEntry]:
    """Every entry of the installed torch's table whose backward differentiates an input."""
    table = {}
    has_forward = upstream_forward_table()  # the engine's reading: one rule for "torch has a formula"
    for overload, raw in upstream_entries().items():
        if _differentiates_an_input(raw):
            reach = _out_of_reach(overload)
            family = "out of reach" if reach else family_of(overload)
            table[f"aten::{overload}"] = TableEntry(f"aten::{overload}", overload, has_forward.get(overload, False), family, reach)
    return table


def backward_formulas(overload: str) -> dict[str, str]:
    """Input key -> torch's backward formula for it: what a new forward formula transposes."""
    raw = upstream_entries().get(overload, {})
    arguments = {a.name for a in torch._C.parse_schema("aten::" + raw["name"]).arguments} if raw else set()
    return {k: str(v) for k, v in _formula_keys(raw) if all(n in arguments for n in _key_names(k))}


def has_forward_upstream(overload: str) -> bool | None:
    """True/False for an overload of the table ("sort.stable"), None when it is not there."""
    entry = derivatives_table().get(f"aten::{overload}")
    return None if entry is None else entry.has_forward


def gap_entries() -> dict[str, TableEntry]:
    """The entries with a backward formula and no forward formula: what part (b) checks."""
    return {name: entry for name, entry in derivatives_table().items() if not entry.has_forward}


@functools.lru_cache(maxsize=1)
def _out_of_reach_data() -> dict:
    """docs/out_of_reach.md's tables, shipped as package data (written by tools/out_of_reach.py)."""
    return json.loads(importlib.resources.files(__package__).joinpath(OUT_OF_REACH_DATA).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def out_of_reach_patterns() -> tuple[tuple[str, str], ...]:
    """(glob on the overload name without its suffix, reason), in the doc's order: first match wins."""
    return tuple((name, reason) for name, reason in _out_of_reach_data()["backend_only"])


@functools.lru_cache(maxsize=1)
def documented_gaps() -> tuple[tuple[str, str], ...]:
    """(overload or glob, reason) from the doc's other tables: entries that still count, with their reason."""
    return tuple((name, reason) for name, reason in _out_of_reach_data()["documented"])


def documented_reason(overload: str) -> str | None:
    return next((reason for pattern, reason in documented_gaps() if fnmatch.fnmatchcase(overload, pattern)), None)
