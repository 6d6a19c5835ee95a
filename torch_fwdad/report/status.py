"""The statuses of the report and the one rule that maps an exception to a status."""

from __future__ import annotations

PASS = "pass"
NOT_IMPLEMENTED = "not implemented"  # PyTorch refuses: "Trying to use forward AD with ...", or an
# autograd.Function without jvp: "You must implement the jvp function ... forward mode AD"
WRONG = "wrong"  # runs, but the tangent disagrees with finite differences
ERROR = "error"  # anything else: the op or its samples fail, a crash, a timeout
EXCLUDED = "excluded"  # cannot be judged by finite differences, or out of reach; with a reason
NO_SAMPLES = "no samples"  # a derivatives-table gap without a sample generator of ours

DETAIL_CHARS = 300


def first_line(text: str) -> str:
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line[:DETAIL_CHARS]


def classify(error: BaseException) -> tuple[str, str]:
    """(status, one-line detail) of an exception raised by a forward-mode check."""
    from torch.autograd.gradcheck import GradcheckError

    message = f"{type(error).__name__}: {first_line(error)}"
    if isinstance(error, NotImplementedError) and any(m in str(error) for m in ("forward AD", "forward mode AD",
                                                                                  "forward-mode AD")):
        return NOT_IMPLEMENTED, message
    if isinstance(error, GradcheckError):
        return WRONG, message
    return ERROR, message
