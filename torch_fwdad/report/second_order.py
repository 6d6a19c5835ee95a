"""Second order through every OpInfo entry with supports_gradgrad: three columns.

- jvp_of_vjp: torch.func.jvp of torch.func.vjp (forward-over-reverse, as torch.func.hessian);
- forward_ad_of_vjp: the same by hand, as PyTorch's own test_jvpvjp and users' HVPs do it:
  make_dual on inputs that require grad, autograd.grad(create_graph=True), unpack_dual;
- vmap_of_jvp: torch.vmap over torch.func.jvp, primals and tangents batched.

The two forward-over-reverse columns are judged against central differences of the VJP in
float64 (PyTorch's reverse mode, no forward AD), the vmap column against a Python loop of
the same JVP, so "pass" means correct. Samples, wrappers and exclusions are the first-order
column's (opinfo.py): op.gradcheck_wrapper, random ops and lower-precision casts excluded.
OpInfo samples are not our rule Samples, hence these runners; the math is the check
matrix's (finite differences with its step and tolerances).
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwAD
from torch.autograd.gradcheck import GradcheckError

from torch_fwdad.testing.checks import FD_EPS, FD_TOL

from . import opinfo

COLUMNS = ("jvp_of_vjp", "forward_ad_of_vjp", "vmap_of_jvp")
COLUMN_TITLES = {"jvp_of_vjp": "jvp(vjp) torch.func", "forward_ad_of_vjp": "forward_ad over reverse",
                 "vmap_of_jvp": "vmap(jvp)"}
# PyTorch's own test of forward-over-reverse; it has none of vmap over jvp in OpInfo's skips
UPSTREAM_TEST = {"jvp_of_vjp": "test_fn_fwgrad_bwgrad", "forward_ad_of_vjp": "test_fn_fwgrad_bwgrad",
                 "vmap_of_jvp": None, "rev_over_fwd_func": None, "rev_over_fwd_forward_ad": None}
BATCH = 3
# Batch element b is the sample scaled by 1 + b/100: distinct values with the sample's
# structure kept (signs, zeros, ties, symmetry, definiteness), so the op's domain holds.
BATCH_SCALE = 0.01


def entries() -> list[str]:
    return sorted(key for key, op in opinfo.opinfos().items() if op.supports_gradgrad)


def check(key: str, column: str, n_samples: int) -> tuple[str, str]:
    return opinfo.check_samples(key, n_samples, CHECKS[column], UPSTREAM_TEST[column])


def _differentiable_outputs(fn, inputs) -> list[int]:
    """Positions of the flat outputs autograd differentiates (not indices, masks, constants)."""
    return [i for i, o in enumerate(opinfo._outputs(fn(*inputs))) if o.requires_grad]


def _outputs_depending_on_inputs(fn, inputs):
    """fn restricted to the outputs autograd differentiates; SkipSample when there is none."""
    with torch.enable_grad():
        positions = _differentiable_outputs(fn, [x.detach().clone().requires_grad_() for x in inputs])
    if not positions:
        raise opinfo.SkipSample("no output depends on a differentiable input")
    return _picked(fn, positions)


def _picked(fn, positions):
    def outputs(*xs):
        flat = opinfo._outputs(fn(*xs))
        return tuple(flat[i] for i in positions)

    return outputs


def _randn_like(tensors, generator) -> list[torch.Tensor]:
    return [torch.randn(t.shape, dtype=t.dtype, generator=generator) for t in tensors]


def _vjp(outputs_of, inputs, cotangents, create_graph=False) -> list[torch.Tensor]:
    """Reverse mode: J(inputs)^T cotangents, zeros for inputs the outputs do not use."""
    outputs = outputs_of(*inputs)
    grads = torch.autograd.grad(outputs, inputs, cotangents, allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


def _vjp_either_side(outputs_of, inputs, cotangents, tangents, cotangent_tangents, eps):
    """The VJP one step either side of the sample along (tangents, cotangent_tangents)."""

    def at(sign):
        xs = [(x + sign * eps * t).detach().requires_grad_() for x, t in zip(inputs, tangents)]
        us = [u + sign * eps * s for u, s in zip(cotangents, cotangent_tangents)]
        return _vjp(outputs_of, xs, us)

    return at(1), at(-1)


def _fd_of_vjp(problem, eps=FD_EPS) -> list[torch.Tensor]:
    """Central differences of the VJP along (tangents, cotangent_tangents)."""
    plus, minus = _vjp_either_side(*problem, eps)
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def _vjp_is_smooth_there(problem) -> bool:
    """Whether the VJP is continuous and differentiable at the sample along the direction.

    At a branch point (hinge_embedding_loss's target at exactly ±1 selects a branch, so
    any step leaves it) the VJP either side differs from the VJP at the point, or the
    central differences grow as 1/step; at a smooth point both agree to O(step²).
    """
    outputs_of, inputs, cotangents, _, _ = problem
    plus, minus = _vjp_either_side(*problem, FD_EPS)
    center = _vjp(outputs_of, [x.detach().requires_grad_() for x in inputs], cotangents)
    continuous = all(torch.allclose((p + m) / 2, c, equal_nan=True, **FD_TOL) for p, m, c in zip(plus, minus, center))
    steps = zip(_fd_of_vjp(problem), _fd_of_vjp(problem, FD_EPS / 2))
    return continuous and all(torch.allclose(a, b, equal_nan=True, **FD_TOL) for a, b in steps)


def _judge_by_finite_differences(what, actual, problem) -> None:
    """actual against central differences of the VJP; a sample where the VJP is not smooth is skipped.
    A wrong tangent at a smooth point fails."""
    try:
        _compare(what, actual, _fd_of_vjp(problem), **FD_TOL)
    except GradcheckError:
        if not _vjp_is_smooth_there(problem):
            raise opinfo.SkipSample("the VJP is not differentiable there (it jumps, or central differences "
                                    f"with steps {FD_EPS:g} and {FD_EPS / 2:g} disagree)") from None
        raise


def _problem(fn, inputs):
    """(outputs_of, inputs, cotangents, tangents, cotangent tangents) with fixed random directions."""
    inputs = [x.detach().requires_grad_() for x in inputs]
    outputs_of = _picked(fn, _differentiable_outputs(fn, inputs))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        outputs = outputs_of(*inputs)
    if not outputs:
        raise opinfo.SkipSample("no output depends on a differentiable input")
    cotangents = _randn_like(outputs, generator)
    return outputs_of, inputs, cotangents, _randn_like(inputs, generator), _randn_like(cotangents, generator)


def _compare(what: str, actual, expected, per: str = "input", **tolerances) -> None:
    for position, (a, e) in enumerate(zip(actual, expected)):
        if not torch.allclose(a, e, equal_nan=True, **tolerances):
            error = (a - e).abs().nan_to_num(nan=float("inf")).max().item()
            raise GradcheckError(f"{what} mismatch for {per} {position}: max abs difference {error:.3g} "
                                 f"(atol {tolerances.get('atol', 1e-8):g}, rtol {tolerances.get('rtol', 1e-5):g})")


def check_jvp_of_vjp(op, fn, inputs) -> None:
    """torch.func.jvp over torch.func.vjp, against finite differences of the VJP."""
    problem = _problem(fn, inputs)
    outputs_of, inputs, cotangents, tangents, cotangent_tangents = problem
    primals = [x.detach() for x in inputs]

    def vjp(xs, us):
        _, pullback = torch.func.vjp(outputs_of, *xs)
        return pullback(tuple(us))

    _, actual = torch.func.jvp(vjp, (primals, cotangents), (tangents, cotangent_tangents))
    _judge_by_finite_differences("jvp of vjp (torch.func) vs finite differences of the VJP", actual, problem)


def check_forward_ad_of_vjp(op, fn, inputs) -> None:
    """make_dual on inputs that require grad, autograd.grad(create_graph=True), unpack_dual."""
    problem = _problem(fn, inputs)
    outputs_of, inputs, cotangents, tangents, cotangent_tangents = problem
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, t) for x, t in zip(inputs, tangents)]
        dual_cotangents = [fwAD.make_dual(u, s) for u, s in zip(cotangents, cotangent_tangents)]
        grads = _vjp(outputs_of, duals, dual_cotangents, create_graph=True)
        # a gradient without a tangent has a zero tangent (forward AD's convention)
        actual = [fwAD.unpack_dual(g).tangent for g in grads]
        actual = [torch.zeros_like(g) if t is None else t.clone() for g, t in zip(grads, actual)]
    _judge_by_finite_differences("forward_ad over autograd.grad vs finite differences of the VJP", actual, problem)


def check_vmap_of_jvp(op, fn, inputs) -> None:
    """torch.vmap over torch.func.jvp (batched primals and tangents), against a Python loop."""
    inputs = [x.detach() for x in inputs]
    outputs_of = _outputs_depending_on_inputs(fn, inputs)
    generator = torch.Generator().manual_seed(0)
    primals = [torch.stack([x * (1 + BATCH_SCALE * b) for b in range(BATCH)]) for x in inputs]
    tangents = [torch.stack(_randn_like([x] * BATCH, generator)) for x in inputs]

    def jvp(xs, ts):
        return torch.func.jvp(outputs_of, tuple(xs), tuple(ts))

    # randomness="same": the entry's outputs do not depend on its draws (opinfo.nature_of
    # checked), so one draw for the whole batch is the user's choice that changes nothing
    batched_out, batched_tangent = torch.func.vmap(jvp, randomness="same")(primals, tangents)
    looped = [jvp([p[b] for p in primals], [t[b] for t in tangents]) for b in range(BATCH)]
    expected_out = [torch.stack([out[i] for out, _ in looped]) for i in range(len(batched_out))]
    expected_tangent = [torch.stack([tan[i] for _, tan in looped]) for i in range(len(batched_tangent))]
    # the same kernels in both; batching may change the order of reductions: float64 defaults
    _compare("vmap(jvp) primal output vs a loop", batched_out, expected_out, "output", rtol=1e-7, atol=1e-7)
    _compare("vmap(jvp) tangent vs a loop", batched_tangent, expected_tangent, "output", rtol=1e-7, atol=1e-7)


# ---------------------------------------------------------------- reverse over forward
# Not report columns (the committed baseline and CI's --quick run stay as they are):
# tools/rev_over_fwd_sweep.py runs them over every OpInfo entry with supports_autograd.
# The gradient of <w, J(x) v> w.r.t. x and v, dotted with random directions, against central
# differences of <w, J v> (forward mode, no reverse) along them: a wrong value means reverse
# mode through the forward formula is silently wrong (a formula reading an output whose
# gradient the backward drops, a detached intermediate).

REV_OVER_FWD = ("rev_over_fwd_func", "rev_over_fwd_forward_ad")


def _rev_over_fwd_problem(fn, inputs, tangents_vary: bool):
    """(outputs_of, primals, tangents, weights, directions) with fixed random values; the
    directions of the tangents are zero unless they vary (require grad)."""
    primals = [x.detach() for x in inputs]
    outputs_of = _outputs_depending_on_inputs(fn, primals)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        outputs = outputs_of(*primals)
    tangents = _randn_like(primals, generator)
    weights = _randn_like(outputs, generator)
    directions = _randn_like(primals + tangents, generator)
    if not tangents_vary:
        directions[len(primals):] = [torch.zeros_like(d) for d in directions[len(primals):]]
    return outputs_of, primals, tangents, weights, directions


def _weighted(weights, out_tangents) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for w, t in zip(weights, out_tangents):
        if t is not None:
            total = total + (w.conj() * t).real.sum()
    return total


def _tangent_objective_along(problem, step):
    """<w, J v> at (x + step dx, v + step dv), by forward mode only."""
    outputs_of, primals, tangents, weights, directions = problem
    n = len(primals)
    shifted = [p + step * d for p, d in zip(primals + tangents, directions)]
    with torch.no_grad():
        _, out_tangents = torch.func.jvp(outputs_of, tuple(shifted[:n]), tuple(shifted[n:]))
    return _weighted(weights, out_tangents)


def _fd_of_objective(problem, eps=FD_EPS) -> torch.Tensor:
    return (_tangent_objective_along(problem, eps) - _tangent_objective_along(problem, -eps)) / (2 * eps)


def _judge_rev_over_fwd(what, grads, problem) -> None:
    """<grads, directions> against central differences; a sample where <w, J v> is not smooth
    along the direction (a kink of the tangent) is skipped, a wrong gradient at a smooth point fails."""
    directions = problem[4]
    actual = _weighted(directions, [None if g is None else g.detach() for g in grads])
    expected = _fd_of_objective(problem)
    try:
        _compare(what, [actual], [expected], per="directional derivative", **FD_TOL)
    except GradcheckError:
        center = _tangent_objective_along(problem, 0.0)
        midpoint = (_tangent_objective_along(problem, FD_EPS) + _tangent_objective_along(problem, -FD_EPS)) / 2
        smooth = (torch.allclose(midpoint, center, **FD_TOL)
                  and torch.allclose(expected, _fd_of_objective(problem, FD_EPS / 2), **FD_TOL))
        if not smooth:
            raise opinfo.SkipSample("the tangent is not differentiable there (it jumps, or central differences "
                                    f"with steps {FD_EPS:g} and {FD_EPS / 2:g} disagree)") from None
        raise


def check_rev_over_fwd_func(op, fn, inputs) -> None:
    """autograd.grad of <w, torch.func.jvp(fn)(x, v)[1]> w.r.t. x and v, which require grad."""
    problem = _rev_over_fwd_problem(fn, inputs, tangents_vary=True)
    outputs_of, primals, tangents, weights, _ = problem
    leaves = [t.clone().requires_grad_() for t in primals + tangents]
    n = len(primals)
    loss = _weighted(weights, torch.func.jvp(outputs_of, tuple(leaves[:n]), tuple(leaves[n:]))[1])
    grads = torch.autograd.grad(loss, leaves, allow_unused=True) if loss.requires_grad else [None] * len(leaves)
    _judge_rev_over_fwd("reverse over torch.func.jvp vs finite differences of the tangent", grads, problem)


def check_rev_over_fwd_forward_ad(op, fn, inputs) -> None:
    """make_dual(x requiring grad, constant v), autograd.grad of <w, unpack_dual(out).tangent>
    after the dual level closes (a JVP loss as users write one)."""
    problem = _rev_over_fwd_problem(fn, inputs, tangents_vary=False)
    outputs_of, primals, tangents, weights, _ = problem
    leaves = [x.clone().requires_grad_() for x in primals]
    with fwAD.dual_level():
        outputs = outputs_of(*[fwAD.make_dual(x, v) for x, v in zip(leaves, tangents)])
        loss = _weighted(weights, [fwAD.unpack_dual(o).tangent for o in outputs])
    grads = torch.autograd.grad(loss, leaves, allow_unused=True) if loss.requires_grad else [None] * len(leaves)
    _judge_rev_over_fwd("reverse over forward_ad vs finite differences of the tangent", grads, problem)

CHECKS = {"jvp_of_vjp": check_jvp_of_vjp, "forward_ad_of_vjp": check_forward_ad_of_vjp,
          "vmap_of_jvp": check_vmap_of_jvp, "rev_over_fwd_func": check_rev_over_fwd_func,
          "rev_over_fwd_forward_ad": check_rev_over_fwd_forward_ad}
