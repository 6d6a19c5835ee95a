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


FORWARD_TEST = "test_forward_mode_AD"
# PyTorch's tests of TestFwdGradients (test/test_ops_fwd_gradients.py) -> what they check
UPSTREAM_TESTS = {FORWARD_TEST: "forward-AD", "test_fn_fwgrad_bwgrad": "forward-over-reverse"}


def upstream_expectation(op, test_name: str = FORWARD_TEST) -> str | None:
    """PyTorch's own verdict on its test `test_name` of this entry on CPU, when it skips or xfails it."""
    for info in op.skips + op.decorators:
        if getattr(info, "cls_name", None) != "TestFwdGradients" or info.test_name not in (None, test_name):
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


def sparse_inputs(inputs) -> str | None:
    """Why the sample cannot be checked when it asks for a tangent on a sparse input, or None."""
    layouts = sorted({str(x.layout).removeprefix("torch.") for x in inputs if x.layout != torch.strided})
    if not layouts:
        return None
    return (f"asks for a tangent on a {'/'.join(layouts)} input, which forward AD in torch cannot represent "
            "(a sparse tensor cannot be dual; docs/out_of_reach.md, sparse tangents): not measurable")


def upcast_inputs(inputs, dtype: torch.dtype) -> tuple[list, list[int]]:
    """Differentiable inputs in lower precision than the check (cov's float32 `aweights`) in
    `dtype`, and their positions: finite differences cannot resolve a float32 input (its
    rounding swamps gradcheck's 1e-6 step). The op and the point are the same; only the
    precision of the check changes."""
    target = dtype if dtype.is_complex else torch.float64
    upcast, positions = [], []
    for position, x in enumerate(inputs):
        if (x.is_floating_point() or x.is_complex()) and _eps(x.dtype) > _eps(target):
            x = x.detach().to(torch.complex128 if x.is_complex() else torch.float64).requires_grad_()
            positions.append(position)
        upcast.append(x)
    return upcast, positions


def non_finite_output(fn, inputs) -> bool:
    """NaN in the primal output (__rpow__: a negative base to a fractional power): finite
    differences and tangent are both NaN there, gradcheck cannot compare them."""
    with torch.no_grad():
        return any(bool(torch.isnan(o).any()) for o in _outputs(fn(*inputs))
                   if o.layout == torch.strided and (o.is_floating_point() or o.is_complex()))


def _with_upstream_verdict(op, detail: str, test_name: str | None = FORWARD_TEST) -> str:
    verdict = upstream_expectation(op, test_name) if test_name else None
    label = UPSTREAM_TESTS.get(test_name, "")
    return f"{detail} (PyTorch's OpInfo marks its {label} test: {verdict})" if verdict else detail


class Unjudgeable(Exception):
    """Finite differences cannot judge this entry; the message says why."""


class SkipSample(Exception):
    """Finite differences cannot judge this sample (a check found it); the message says why."""


def judgeable_calls(op, dtype, n_samples: int, notes: list, nan_samples: list, test_name: str | None = FORWARD_TEST):
    """(sample index, fn, differentiable inputs) of the first samples finite differences can judge.

    Raises Unjudgeable when a sample shows the entry cannot be judged (sparse tangents,
    random, lower-precision casts), at the sample where that is found: earlier samples
    have been checked by then. Samples with a NaN output are skipped into nan_samples.
    """
    samples = op.sample_inputs("cpu", dtype, requires_grad=True)
    for index, sample in enumerate(itertools.islice(samples, n_samples)):
        fn, inputs = as_gradcheck_function(op, sample)
        if not inputs:
            continue
        sparse = sparse_inputs(inputs)
        if sparse:
            from . import table  # noqa: PLC0415 - table reads torch's derivatives.yaml

            documented = table.documented_reason(key_of(op))
            detail = f"sample {index} {sparse}" + (f"; docs/out_of_reach.md: {documented}" if documented else "")
            raise Unjudgeable(_with_upstream_verdict(op, detail, test_name))
        inputs, upcast = upcast_inputs(inputs, dtype)
        if upcast:
            notes.append(f"sample {index}: input {', '.join(map(str, upcast))} upcast to double "
                         "(float32 in the OpInfo; finite differences cannot resolve it)")
        if non_finite_output(fn, inputs):
            nan_samples.append(index)
            continue
        reason = nature_of(fn, inputs)
        if reason:
            raise Unjudgeable(reason)
        yield index, differentiable_outputs_only(fn, inputs), inputs


def check_samples(key: str, n_samples: int, check_call, test_name: str | None = FORWARD_TEST) -> tuple[str, str]:
    """(status, detail) of check_call(op, fn, inputs) over the first judgeable samples of one entry.

    check_call raises on failure; test_name is PyTorch's own test of the same property,
    whose skip or xfail on this entry the detail quotes.
    """
    if key in EXCLUDED_BY_NAME:
        return EXCLUDED, EXCLUDED_BY_NAME[key]
    op = opinfos()[key]
    dtype, why_not = check_dtype(op)
    if dtype is None:
        return EXCLUDED, why_not
    checked, notes, nan_samples, skipped = 0, [], [], []
    calls = judgeable_calls(op, dtype, n_samples, notes, nan_samples, test_name)
    index = None
    try:
        for index, fn, inputs in calls:
            try:
                check_call(op, fn, inputs)
            except SkipSample as why:
                notes.append(f"sample {index} not checked: {why}")
                skipped.append(index)
                continue
            checked += 1
    except Unjudgeable as reason:
        return EXCLUDED, str(reason)
    except Exception as error:  # noqa: BLE001 - every failure is a finding of the report
        status, detail = classify(error)
        return status, _with_upstream_verdict(op, f"sample {index}: {detail}", test_name) + "".join(f"; {n}" for n in notes)
    if nan_samples:
        notes.append(f"sample{'s' * (len(nan_samples) > 1)} {', '.join(map(str, nan_samples))} not checked: "
                     "NaN in the output (finite differences and tangent both NaN)")
    if not checked and nan_samples:
        return EXCLUDED, _with_upstream_verdict(
            op, f"NaN in the output of every sample with an input requiring grad ({', '.join(map(str, nan_samples))}; "
                "e.g. a negative base to a fractional power): finite differences and tangent are both NaN, "
                "nothing to compare, not measured", test_name)
    note = "; " + "; ".join(notes) if notes else ""
    if not checked and skipped:
        return EXCLUDED, _with_upstream_verdict(op, "no sample finite differences can judge" + note, test_name)
    if not checked:
        return EXCLUDED, f"none of the first {n_samples} {dtype} samples has an input requiring grad"
    return PASS, f"{checked} {str(dtype).removeprefix('torch.')} samples{note}"


def forward_gradcheck(op, fn, inputs) -> None:
    """PyTorch's fast-mode gradcheck with forward AD only."""
    torch.autograd.gradcheck(
        fn, inputs, check_forward_ad=True, check_backward_ad=False, check_undefined_grad=False,
        check_batched_grad=False, check_batched_forward_grad=False,  # vmap is not forward AD
        nondet_tol=op.gradcheck_nondet_tol, fast_mode=True,  # slow mode took minutes on ctc_loss
    )


def check(key: str, n_samples: int) -> tuple[str, str]:
    """(status, detail) of forward mode through one OpInfo entry."""
    return check_samples(key, n_samples, forward_gradcheck)
