"""OpInfo-style sample generators, one per derivatives.yaml entry, one module per family.

A generator takes (dtype, device) and yields `Sample`s for its overload; `errors` yields
`ErrorSample`s of bad input that must fail the same way with and without tangents.
Every module in this package is imported, so a family adds samples by adding a module.

Expected failures sit beside the samples they excuse, as OpInfo keeps `skips` on the op:
`samples_for(..., xfails=xfail(reason, check, ...))` for every sample of an entry,
`Sample(..., xfails=...)` for one sample (a tie, a zero distance). Each names checks of
testing/checks.py's CHECKS and says why they cannot pass; tests/ mark those cases
xfail(strict=True), so one that starts passing fails the tests, and the coverage report
skips them. `expected_failure` is the one lookup.
"""

from __future__ import annotations

import importlib
import pkgutil
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import torch


@dataclass(frozen=True)
class Sample:
    """One call of an overload: op(*args, **kwargs), or wrapper(op, *args, **kwargs).

    The differentiable inputs are the floating/complex tensors in args (also inside
    lists), unless `diff` names their positions in args. `wrapper` plays the part of
    OpInfo's gradcheck_wrapper: e.g. make a matrix Hermitian before cholesky.
    `xfails` maps the checks this sample cannot pass (a tie, a zero distance) to why.
    """

    args: tuple
    kwargs: Mapping = field(default_factory=dict)
    desc: str = ""
    wrapper: Callable | None = None
    diff: tuple[int, ...] | None = None
    xfails: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorSample:
    args: tuple
    kwargs: Mapping = field(default_factory=dict)
    desc: str = ""


@dataclass(frozen=True)
class SampleSource:
    name: str  # "aten::cholesky"
    generate: Callable[[torch.dtype, str], Iterator[Sample]]
    dtypes: tuple[torch.dtype, ...]
    errors: Callable[[str], Iterator[ErrorSample]] | None = None
    # False where tests/test_formulas.py cannot run the kernel in float64 on CPU (CUDA
    # attention kernels, float32-only CPU fallbacks); the family's own tests check them.
    cpu_runnable: bool = True
    # Report-only samples for a gap of torch's derivatives table that torch already
    # closes without a formula (the mechanism: "decompositions_for_jvp",
    # "CompositeImplicitAutograd"). No derivatives.yaml entry goes with them; the
    # coverage report measures them, and tests/test_formulas.py checks that they pass
    # with torch_fwdad disabled.
    upstream_covers: str | None = None
    # check -> why no sample of this entry can pass it
    xfails: Mapping[str, str] = field(default_factory=dict)


_REGISTRY: dict[str, SampleSource] = {}


def samples_for(name: str, *, dtypes=(torch.float64,), errors=None, cpu_runnable=True, upstream_covers=None,
                xfails: Mapping[str, str] | None = None):
    """Decorator: register the sample generator of derivatives.yaml entry `name`;
    `xfails` (built with `xfail`) holds the checks none of its samples can pass."""

    def register(generate):
        if name in _REGISTRY:
            raise ValueError(f"samples for {name} are already registered ({_REGISTRY[name].generate.__module__})")
        _REGISTRY[name] = SampleSource(name, _seeded(name, generate), tuple(dtypes), errors, cpu_runnable, upstream_covers,
                                       dict(xfails or {}))
        return generate

    return register


def _seeded(name: str, generate):
    """Samples that do not depend on which generators ran before: each source draws from
    its own seed (zlib.crc32 of its name, stable across processes), on a forked RNG."""

    def generate_seeded(dtype, device):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(zlib.crc32(name.encode()))
            return iter(list(generate(dtype, device)))

    return generate_seeded


def sample_registry() -> dict[str, SampleSource]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(_REGISTRY)


def expected_failure(name: str, check: str, sample: Sample | None = None) -> str | None:
    """Why `check` cannot pass on `sample` of entry `name` (on every sample of it when
    `sample` is None), or None when it must pass."""
    source = _REGISTRY.get(name) or sample_registry()[name]
    reason = source.xfails.get(check)
    if reason is None and sample is not None:
        reason = sample.xfails.get(check)
    return reason


# ---------------------------------------------------------------- expected failures

FWD_OVER_REV = ("fwd_over_rev_func", "fwd_over_rev_forward_ad")


def xfail(reason: str, *checks: str) -> dict[str, str]:
    """Each of `checks` cannot pass, for `reason` (combine several with `|`)."""
    return dict.fromkeys(checks, reason)


def no_reverse_mode(op: str, compared_in: str = "tests/test_backward_ops.py") -> dict[str, str]:
    """The checks that need a VJP, for an op whose backward PyTorch does not implement."""
    return xfail(
        f"PyTorch's backward formula for {op} is not_implemented, so reverse mode through it raises: "
        "there is no VJP to compare the JVP with and no reverse gradient to compare bitwise "
        f"(the primal is compared in {compared_in})", "jvp_vjp", "unchanged")


NOT_IN_DERIVATIVES_TABLE = "has no reverse mode in PyTorch (not in its derivatives table)"
OWN_BACKWARD_NOT_IMPLEMENTED = "is itself a backward op whose own backward is not_implemented in PyTorch"


def third_order(op: str, why: str) -> dict[str, str]:
    """Forward-over-reverse of a backward op that has no VJP itself (`why`: one of the two above)."""
    return xfail(f"{op} {why}: there is no VJP of it to differentiate (that would be third order of the original op)",
                 *FWD_OVER_REV)


REV_OVER_FWD = ("rev_over_fwd_func", "rev_over_fwd_forward_ad", "rev_over_fwd_vjp")


def tangent_kink_at(what: str) -> dict[str, str]:
    """Forward-over-forward and reverse-over-forward at a point where the first-order tangent jumps."""
    return xfail(f"the tangent is discontinuous at {what}, so finite differences of it cannot match its derivative "
                 "(forward-over-forward, reverse-over-forward)", "second_order", *REV_OVER_FWD)


def tangent_not_differentiable(kernel: str, why: str) -> dict[str, str]:
    """Reverse over forward where the tangent is computed by a PyTorch kernel whose own
    derivative PyTorch does not implement: reverse mode through the tangent raises that error."""
    return xfail(f"the tangent is computed by PyTorch's {kernel} ({why}), which has no derivative in PyTorch: "
                 f"reverse mode through the tangent raises 'derivative for {kernel} is not implemented' "
                 "(an error naming the kernel, never a value)", *REV_OVER_FWD)


def gradient_kink_at(what: str) -> dict[str, str]:
    """Forward-over-reverse at a point where the gradient jumps."""
    return xfail(f"the gradient is not differentiable at {what}: finite differences of the VJP straddle it "
                 "(forward-over-reverse follows PyTorch's backward formula there)", *FWD_OVER_REV)
