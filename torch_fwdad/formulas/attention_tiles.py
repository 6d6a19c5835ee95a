"""The optional C++ tile loop of attention's values-only tangent (formulas/_attention_tiles.cpp).

`pip install -e .` builds `_attention_tiles` beside this module when a C++ compiler is there
(setup.py); it registers torch.ops.torch_fwdad.attention_tangent_tiles. Without it, under a
torch other than the release it was built against, or with TORCH_FWDAD_ATTENTION_TILES=python
in the environment, attention.py runs its Python tiles instead (same values).
`extension.info()` says which path runs and why; `extension.use_python()` switches at run
time (tests run both).
"""

from __future__ import annotations

import torch

from ..engine.extension import OptionalExtension

__all__: list[str] = []  # no helpers for derivatives.yaml formulas: attention.py calls this module

ENVIRONMENT_VARIABLE = "TORCH_FWDAD_ATTENTION_TILES"  # "python": never load the C++ tile loop

# the tile loop; `extension.active` is the switch (`extension.use_python()`, `extension.info()`)
extension = OptionalExtension(__package__, "_attention_tiles", ENVIRONMENT_VARIABLE, "C++ tile loop")


def output_tangent(query, key, value, out, lse, mask, tangents, scale, causal_offset, tile_rows):
    """(Ȯ, l̇se or None) by the C++ tile loop; see _attention_tiles.cpp for what it expects."""
    query_t, key_t, value_t, mask_t = tangents
    out_t, lse_t = torch.ops.torch_fwdad.attention_tangent_tiles(
        query, key, value, out, lse, mask, query_t, key_t, value_t, mask_t, scale, causal_offset, tile_rows)
    has_score_tangent = query_t is not None or key_t is not None or mask_t is not None
    return out_t, lse_t if has_score_tangent else None
