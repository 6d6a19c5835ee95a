"""OpInfo-style sample generators, one per derivatives.yaml entry, one module per family.

A generator takes (dtype, device) and yields `Sample`s for its overload; `errors` yields
`ErrorSample`s of bad input that must fail the same way with and without tangents.
Every module in this package is imported, so a family adds samples by adding a module.
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
    A sample that cannot pass a check (a tie, a zero distance) is named by its `desc`
    in testing/known_failures.py, the one table of expected failures.
    """

    args: tuple
    kwargs: Mapping = field(default_factory=dict)
    desc: str = ""
    wrapper: Callable | None = None
    diff: tuple[int, ...] | None = None


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


_REGISTRY: dict[str, SampleSource] = {}


def samples_for(name: str, *, dtypes=(torch.float64,), errors=None, cpu_runnable=True, upstream_covers=None):
    """Decorator: register the sample generator of derivatives.yaml entry `name`."""

    def register(generate):
        if name in _REGISTRY:
            raise ValueError(f"samples for {name} are already registered ({_REGISTRY[name].generate.__module__})")
        _REGISTRY[name] = SampleSource(name, _seeded(name, generate), tuple(dtypes), errors, cpu_runnable, upstream_covers)
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


def make(*shape, dtype, device="cpu", low=None, high=None, noncontiguous=False, **kwargs):
    """torch.testing.make_tensor with the defaults our samples want."""
    return torch.testing.make_tensor(
        shape, dtype=dtype, device=device, low=low, high=high, noncontiguous=noncontiguous, **kwargs
    )
