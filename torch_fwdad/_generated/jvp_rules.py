# @generated from derivatives.yaml by `python -m codegen`. Do not edit:
# change derivatives.yaml or torch_fwdad/formulas, then rerun `python -m codegen`.
"""Forward rules for aten overloads, one function per derivatives.yaml entry."""

import torch  # noqa: F401  (formulas may name torch)

from torch_fwdad.engine import BuiltinEntry
from torch_fwdad.formulas import (  # noqa: F401
    add_tangents,
    cholesky_jvp,
)


def jvp_cholesky(primals, tangents, outputs):
    # derivatives.yaml:71: cholesky(Tensor self, bool upper=False) -> Tensor
    self_p, upper = primals
    self_t, _ = tangents
    result = outputs
    result_tangent = cholesky_jvp(self_t, result, upper)
    return result_tangent


ENTRIES = (
    BuiltinEntry('aten::cholesky', 'cholesky(Tensor self, bool upper=False) -> Tensor', jvp_cholesky, 'derivatives.yaml:71'),
)
