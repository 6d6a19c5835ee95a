"""Evaluation stage: a `ColoredPattern` in, the coloured products and the user's output format out.

One job per module: `decompression` (compressed products -> values, index tensors built once),
`assembly` (values -> the output format), `probe` (the check against one exact product),
`compiled` (torch.compile with an eager fallback), `cost` (star or acyclic for method="auto"),
`prepared` (what one input shape needs, built once, and the per-call arithmetic). Evaluation
imports the colouring stage's result types and `products` / `patterns` below it; nothing
imports evaluation but the plans.
"""

from torch_fwdad.sparse_ad.evaluation.assembly import OUTPUTS, Compressed
from torch_fwdad.sparse_ad.evaluation.cost import cheaper_symmetric_coloring
from torch_fwdad.sparse_ad.evaluation.prepared import PreparedEvaluation
from torch_fwdad.sparse_ad.evaluation.probe import CHECKS, SparsityPatternError, check_against_probe

__all__ = ["CHECKS", "OUTPUTS", "Compressed", "PreparedEvaluation", "SparsityPatternError", "check_against_probe",
           "cheaper_symmetric_coloring"]
