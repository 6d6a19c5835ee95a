"""Part (a) of the report: every OpInfo entry with supports_autograd, forward mode vs finite differences.

The check mirrors PyTorch's own forward-AD test (TestGradients._check_helper): the first
few samples in float64 (complex128 where the op has no real autograd dtype), called
through `op.gradcheck_wrapper` so Hermitian/triangular/masked inputs mean what the op
expects, and gradcheck with forward AD only: fast mode (a random projection of the
Jacobian, as PyTorch's fast gradcheck) and no batched (vmap) check, which is not forward AD.
"""

from __future__ import annotations

import functools
import itertools

import torch

from .status import EXCLUDED, PASS, classify

_RANDOM = ("random sampling: torch defines its derivative as zero (draws are not reparametrised); "
           "finite differences through a fixed-seed draw see a different function")

# Entries finite differences cannot judge, by name: key -> reason. Most exclusions are
# found by running the op (see `nature_of`); this table holds those the OpInfo hides
# behind a fixed seed.
EXCLUDED_BY_NAME: dict[str, str] = {
    "normal": _RANDOM,
    "normal.number_mean": _RANDOM,
    "bernoulli": _RANDOM,
}


def key_of(op) -> str:
    """"index_reduce.prod", "nn.functional.pdist": name plus variant, unique in op_db."""
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


@functools.lru_cache(maxsize=1)
def opinfos() -> dict[str, object]:
    from torch.testing._internal.common_methods_invocations import op_db

    return {key_of(op): op for op in op_db if op.supports_autograd}


def family_of(key: str) -> str:
    for prefix in ("nn.functional", "linalg", "fft", "special", "masked", "sparse", "signal"):
        if key.startswith(prefix + "."):
            return prefix
    return "torch"


def check_dtype(op) -> tuple[torch.dtype | None, str]:
    """Double precision, as finite differences need, or None and why there is none."""
    supported = op.supported_backward_dtypes("cpu")
    dtype = next((d for d in (torch.float64, torch.complex128) if d in supported), None)
    if not op.supported_dtypes("cpu"):
        return None, "runs on CUDA only (no CPU dtypes); the report checks on CPU"
    if not supported:
        return None, "no differentiable dtype: not differentiable by nature"
    return dtype, "no float64 or complex128 autograd on CPU: finite differences need double precision"


def upstream_expectation(op) -> str | None:
    """PyTorch's own verdict on its forward-AD test of this entry on CPU, when it skips or xfails it."""
    for info in op.skips + op.decorators:
        if getattr(info, "cls_name", None) != "TestFwdGradients" or info.test_name not in (None, "test_forward_mode_AD"):
            continue
        if info.device_type not in (None, "cpu") or (info.dtypes and torch.float64 not in info.dtypes):
            continue
        names = " ".join(getattr(d, "__name__", "") for d in info.decorators)
        return "expected failure" if "expectedFailure" in names else "skipped"
    return None


def as_gradcheck_function(op, sample):
    """fn(*differentiable inputs) and those inputs, as PyTorch's _check_helper builds them."""
    variant = op.get_op()
    positional = [sample.input, *sample.args]
    leaves = [x for x in _tensors(positional) + _tensors(list(sample.kwargs.values())) if x.requires_grad]

    def fn(*inputs):
        feed = iter(inputs)
        args = [_refill(a, feed) for a in positional]
        kwargs = {k: _refill(v, feed) for k, v in sample.kwargs.items()}
        output = op.gradcheck_wrapper(variant, *args, **kwargs)
        return sample.output_process_fn_grad(output) if sample.output_process_fn_grad else output

    return fn, leaves


def differentiable_outputs_only(fn, inputs):
    """fn restricted to the outputs autograd differentiates (native_layer_norm's mean and
    rstd are not), which slow-mode gradcheck checks; fast mode trips over the others."""
    outputs = fn(*inputs)
    if not isinstance(outputs, (tuple, list)):
        return fn
    keep = [i for i, o in enumerate(outputs) if isinstance(o, torch.Tensor) and o.requires_grad]
    if not keep or len(keep) == len(outputs):
        return fn
    return lambda *xs: tuple(fn(*xs)[i] for i in keep)


def _tensors(values) -> list:
    found = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
            found += list(value)
    return found


def _refill(value, feed):
    if isinstance(value, torch.Tensor):
        return next(feed) if value.requires_grad else value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return [next(feed) if v.requires_grad else v for v in value]
    return value


def _outputs(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _outputs(v)]
    return []


def _eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype.to_real() if dtype.is_complex else dtype).eps


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.layout != torch.strided:
        a, b = a.to_dense(), b.to_dense()
    return a.shape == b.shape and bool(torch.equal(a, b) or torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))


def nature_of(fn, inputs) -> str | None:
    """Why finite differences cannot judge this call, or None when they can."""
    with torch.no_grad():
        first, second = _outputs(fn(*inputs)), _outputs(fn(*inputs))
    input_eps = min((_eps(x.dtype) for x in inputs), default=None)
    for a in first:
        if input_eps is not None and (a.is_floating_point() or a.is_complex()) and _eps(a.dtype) > input_eps:
            return f"casts to lower precision ({a.dtype}): finite differences cannot judge it"
    if len(first) != len(second) or not all(_same(a, b) for a, b in zip(first, second)):
        return "random: two calls on the same input differ, finite differences cannot judge it"
    return None


def check(key: str, n_samples: int) -> tuple[str, str]:
    """(status, detail) of forward mode through one OpInfo entry."""
    if key in EXCLUDED_BY_NAME:
        return EXCLUDED, EXCLUDED_BY_NAME[key]
    op = opinfos()[key]
    dtype, why_not = check_dtype(op)
    if dtype is None:
        return EXCLUDED, why_not
    samples = op.sample_inputs("cpu", dtype, requires_grad=True)
    checked = 0
    for index, sample in enumerate(itertools.islice(samples, n_samples)):
        fn, inputs = as_gradcheck_function(op, sample)
        if not inputs:
            continue
        reason = nature_of(fn, inputs)
        if reason:
            return EXCLUDED, reason
        fn = differentiable_outputs_only(fn, inputs)
        try:
            torch.autograd.gradcheck(
                fn, inputs, check_forward_ad=True, check_backward_ad=False, check_undefined_grad=False,
                check_batched_grad=False, check_batched_forward_grad=False,  # vmap is not forward AD
                nondet_tol=op.gradcheck_nondet_tol, fast_mode=True,  # slow mode took minutes on ctc_loss
            )
        except Exception as error:  # noqa: BLE001 - every failure is a finding of the report
            status, detail = classify(error)
            verdict = upstream_expectation(op)
            note = f" (PyTorch's OpInfo marks its forward-AD test: {verdict})" if verdict else ""
            return status, f"sample {index}: {detail}{note}"
        checked += 1
    if not checked:
        return EXCLUDED, f"none of the first {n_samples} {dtype} samples has an input requiring grad"
    return PASS, f"{checked} {str(dtype).removeprefix('torch.')} samples"
