"""The optional C++ tile loop of attention's values-only tangent (formulas/_attention_tiles.cpp).

`pip install -e .` builds `_attention_tiles` beside this module when a C++ compiler is there
(setup.py); it registers torch.ops.torch_fwdad.attention_tangent_tiles. Without it, under a
torch other than the release it was built against, or with TORCH_FWDAD_ATTENTION_TILES=python
in the environment, attention.py runs its Python tiles instead (same values). `info()` says
which path runs and why; `use_python(True)` switches at run time (tests run both).
"""

from __future__ import annotations

import torch

from ..engine.extension import load_extension

__all__: list[str] = []  # no helpers for derivatives.yaml formulas: attention.py calls this module

ENVIRONMENT_VARIABLE = "TORCH_FWDAD_ATTENTION_TILES"  # "python": never load the C++ tile loop


def _load():
    """(the extension module or None, why)."""
    return load_extension(__package__, "_attention_tiles", ENVIRONMENT_VARIABLE, "C++ tile loop")


_extension, _load_reason = _load()
_use_cpp = _extension is not None


def active() -> bool:
    """Whether attention's values-only tangent runs the C++ tile loop."""
    return _use_cpp


def info() -> dict[str, object]:
    """{"path": "c++" or "python", "built": whether the extension loaded, "reason": why}."""
    reason = _load_reason if _extension is None or _use_cpp else "use_python(True) was called"
    return {"path": "c++" if _use_cpp else "python", "built": _extension is not None, "reason": reason}


def use_python(python: bool = True) -> None:
    """Run the Python tiles (True) or the C++ tile loop (False; raises when it is not built)."""
    global _use_cpp
    if not python and _extension is None:
        raise RuntimeError(f"torch_fwdad: the C++ attention tile loop is not available: {_load_reason}")
    _use_cpp = not python


def output_tangent(query, key, value, out, lse, mask, tangents, scale, causal_offset, tile_rows):
    """(Ȯ, l̇se or None) by the C++ tile loop; see _attention_tiles.cpp for what it expects."""
    query_t, key_t, value_t, mask_t = tangents
    out_t, lse_t = torch.ops.torch_fwdad.attention_tangent_tiles(
        query, key, value, out, lse, mask, query_t, key_t, value_t, mask_t, scale, causal_offset, tile_rows)
    has_score_tangent = query_t is not None or key_t is not None or mask_t is not None
    return out_t, lse_t if has_score_tangent else None
