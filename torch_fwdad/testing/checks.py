"""The check matrix every forward rule passes.

Each check takes an overload and a Sample and raises AssertionError on failure. The
same functions serve tests/ and the coverage report.
"""

from __future__ import annotations

import contextlib
import itertools

import torch
import torch.autograd.forward_ad as fwAD

from .samples import ErrorSample, Sample

FD_EPS = 1e-6
FD_TOL = dict(atol=1e-5, rtol=1e-3)  # gradcheck's defaults, for finite differences
# <J t, u> = <t, J^T u> for kernels with no float64 CPU path (float32-only fallbacks): both
# sides are float32 reductions, accumulated in float64. Measured relative differences
# on our samples are at most 5e-7; torch.testing's float32 rtol (1.3e-6) with headroom.
LOW_PRECISION_TOL = dict(atol=1e-5, rtol=1e-5)



@contextlib.contextmanager
def plain_pytorch():
    """torch_fwdad's rules uninstalled for the block: what PyTorch alone computes or raises."""
    import torch_fwdad

    torch_fwdad.disable()
    try:
        yield
    finally:
        torch_fwdad.enable()


def diff_positions(sample: Sample) -> list[tuple[int, int | None]]:
    """(arg index, list index or None) of every differentiable tensor input."""
    positions = []
    for i, arg in enumerate(sample.args):
        if sample.diff is not None and i not in sample.diff:
            continue
        if isinstance(arg, torch.Tensor) and (arg.is_floating_point() or arg.is_complex()):
            positions.append((i, None))
        elif isinstance(arg, (list, tuple)):
            positions += [(i, j) for j, a in enumerate(arg) if isinstance(a, torch.Tensor) and (a.is_floating_point() or a.is_complex())]
    return positions


def as_function(op, sample: Sample):
    """fn(*diff_inputs) -> tuple of the op's outputs, and the diff inputs of the sample."""
    positions = diff_positions(sample)

    def fn(*inputs):
        args = [list(a) if isinstance(a, (list, tuple)) else a for a in sample.args]
        for (i, j), value in zip(positions, inputs):
            if j is None:
                args[i] = value
            else:
                args[i][j] = value
        out = sample.wrapper(op, *args, **sample.kwargs) if sample.wrapper else op(*args, **sample.kwargs)
        return out if isinstance(out, tuple) else (out,)

    inputs = [sample.args[i] if j is None else sample.args[i][j] for i, j in positions]
    return fn, [x.detach().clone() for x in inputs]


def _float_outputs(outputs):
    return [i for i, o in enumerate(outputs) if isinstance(o, torch.Tensor) and (o.is_floating_point() or o.is_complex())]


def _random_like(tensors, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(t.shape, dtype=t.dtype, generator=generator).to(t.device) for t in tensors]


def _dot(a, b) -> torch.Tensor:
    return (a.conj() * b).real.sum()


def jvp_full(fn, inputs, tangents):
    """All output tangents through torch.func.jvp (zeros where an output has none)."""
    return torch.func.jvp(fn, tuple(inputs), tuple(tangents))


def check_gradcheck(op, sample: Sample) -> None:
    """Forward-mode JVP against central finite differences, batched forward grad on."""
    fn, inputs = as_function(op, sample)
    inputs = [x.requires_grad_() for x in inputs]

    def float_outputs(*xs):
        # masks and indices (bool, int) have no derivative to check; finite differences
        # cannot even subtract bool tensors
        outputs = fn(*xs)
        return tuple(outputs[i] for i in _float_outputs(outputs))

    torch.autograd.gradcheck(
        float_outputs, inputs, check_forward_ad=True, check_backward_ad=False,
        check_batched_forward_grad=True, check_undefined_grad=False,
    )


def check_jvp_vjp(op, sample: Sample) -> None:
    """<J t, u> = <t, Jᵀ u> against PyTorch's own backward."""
    fn, inputs = as_function(op, sample)
    tangents = _random_like(inputs, 0)
    outputs, out_tangents = jvp_full(fn, inputs, tangents)
    float_outputs = _float_outputs(outputs)
    cotangents = _random_like([outputs[i] for i in float_outputs], 1)
    graph_inputs = [x.detach().requires_grad_() for x in inputs]
    graph_outputs = fn(*graph_inputs)
    # outputs reverse mode does not differentiate (weight norm's norms, which carry a
    # tangent for second order) have no Jᵀ to compare against: gradcheck covers them
    reversible = [(i, u) for i, u in zip(float_outputs, cotangents) if graph_outputs[i].requires_grad]
    pairs = [(graph_outputs[i], u) for i, u in reversible]
    vjps = torch.autograd.grad([o for o, _ in pairs], graph_inputs, [u for _, u in pairs], allow_unused=True)
    forward = sum((_dot(u, out_tangents[i]) for i, u in reversible), torch.tensor(0.0, dtype=torch.float64))
    backward = sum((_dot(v, t) for v, t in zip(vjps, tangents) if v is not None), torch.tensor(0.0, dtype=torch.float64))
    tol = {} if all(x.dtype in (torch.float64, torch.complex128) for x in inputs) else LOW_PRECISION_TOL
    torch.testing.assert_close(forward, backward, **tol, msg=lambda m: f"<J t, u> != <t, J^T u>: {m}")


def check_unchanged(op, sample: Sample) -> None:
    """Primal outputs and reverse-mode gradients bitwise equal to plain PyTorch's."""
    fn, inputs = as_function(op, sample)
    tangents = _random_like(inputs, 0)

    def primal_and_grads(dual: bool):
        leaves = [x.detach().requires_grad_() for x in inputs]
        with fwAD.dual_level() if dual else contextlib.nullcontext():
            args = [fwAD.make_dual(x, t) for x, t in zip(leaves, tangents)] if dual else leaves
            outputs = fn(*args)
            primals = [fwAD.unpack_dual(o).primal if dual else o for o in outputs]
        diff = [o for o in primals if isinstance(o, torch.Tensor) and o.requires_grad]
        cotangents = _random_like(diff, 1)
        grads = torch.autograd.grad(diff, leaves, cotangents, allow_unused=True) if diff else ()
        return [o.detach() for o in primals], grads

    with_fwdad = primal_and_grads(dual=True)
    with plain_pytorch():
        plain = primal_and_grads(dual=False)
    for ours, theirs in zip(with_fwdad[0], plain[0]):
        assert torch.equal(ours, theirs), "primal output differs from plain PyTorch's"
    for ours, theirs in zip(with_fwdad[1], plain[1]):
        assert (ours is None) == (theirs is None) and (ours is None or torch.equal(ours, theirs)), \
            "reverse-mode gradient differs from plain PyTorch's"


def check_partial(op, sample: Sample) -> None:
    """Every subset of inputs carrying tangents gives the full JVP with zeros elsewhere."""
    fn, inputs = as_function(op, sample)
    tangents = _random_like(inputs, 0)
    for size in range(1, len(inputs) + 1):
        for subset in itertools.combinations(range(len(inputs)), size):
            masked = [t if k in subset else torch.zeros_like(t) for k, t in enumerate(tangents)]
            _, expected = jvp_full(fn, inputs, masked)
            with fwAD.dual_level():
                duals = [fwAD.make_dual(x, tangents[k]) if k in subset else x for k, x in enumerate(inputs)]
                got = [fwAD.unpack_dual(o).tangent for o in fn(*duals)]
            for out_index in _float_outputs(expected):
                tangent = got[out_index]
                tangent = torch.zeros_like(expected[out_index]) if tangent is None else tangent
                torch.testing.assert_close(tangent, expected[out_index], msg=lambda m: f"tangents on inputs {subset}: {m}")


def check_second_order(op, sample: Sample) -> None:
    """Forward-over-forward against central finite differences of the first-order JVP."""
    fn, inputs = as_function(op, sample)
    first, second = _random_like(inputs, 0), _random_like(inputs, 2)

    def tangent_of(*xs):
        return jvp_full(fn, xs, first)[1]

    _, got = jvp_full(tangent_of, inputs, second)
    plus = tangent_of(*[x + FD_EPS * t for x, t in zip(inputs, second)])
    minus = tangent_of(*[x - FD_EPS * t for x, t in zip(inputs, second)])
    for k in _float_outputs(got):
        expected = (plus[k] - minus[k]) / (2 * FD_EPS)
        torch.testing.assert_close(got[k], expected, **FD_TOL, msg=lambda m: f"forward-over-forward, output {k}: {m}")


# ---------------------------------------------------------------- second order and vmap

def _vjp_function(fn, inputs):
    """vjp(xs, us) = Jᵀ(xs) us over the floating outputs that depend on the inputs, and
    random cotangents `us` for them (PyTorch's own backward, reached through the op)."""
    graph_inputs = [x.detach().requires_grad_() for x in inputs]
    outputs = fn(*graph_inputs)
    differentiable = [i for i in _float_outputs(outputs) if outputs[i].requires_grad]
    cotangents = _random_like([outputs[i] for i in differentiable], 1)

    def float_outputs(*xs):
        outs = fn(*xs)
        return tuple(outs[i] for i in differentiable)

    def vjp(*xs_and_us):
        xs, us = xs_and_us[:len(inputs)], xs_and_us[len(inputs):]
        _, pullback = torch.func.vjp(float_outputs, *xs)
        return pullback(tuple(us))

    return vjp, cotangents, float_outputs


def _fd_of(g, primals, tangents):
    plus = g(*[x + FD_EPS * t for x, t in zip(primals, tangents)])
    minus = g(*[x - FD_EPS * t for x, t in zip(primals, tangents)])
    return [(p - m) / (2 * FD_EPS) for p, m in zip(plus, minus)]


def _assert_second_order(got, expected, how):
    for k, (g, e) in enumerate(zip(got, expected)):
        g = torch.zeros_like(e) if g is None else g
        torch.testing.assert_close(g, e, **FD_TOL, msg=lambda m: f"forward-over-reverse ({how}), gradient of input {k}: {m}")


def check_fwd_over_rev_func(op, sample: Sample) -> None:
    """torch.func.jvp of torch.func.vjp (inputs and cotangents perturbed) against central
    finite differences of the VJP: the JVPs of the op's backward, and every tangent it reads."""
    fn, inputs = as_function(op, sample)
    vjp, cotangents, _ = _vjp_function(fn, inputs)
    if not cotangents:
        return
    primals = [*inputs, *cotangents]
    tangents = _random_like(primals, 3)
    _, got = torch.func.jvp(vjp, tuple(primals), tuple(tangents))
    _assert_second_order(got, _fd_of(vjp, primals, tangents), "torch.func.jvp of torch.func.vjp")


def check_fwd_over_rev_forward_ad(op, sample: Sample) -> None:
    """The same through torch.autograd.forward_ad and autograd.grad(create_graph=True), as
    users write a Hessian-vector product (and PyTorch's test_jvpvjp builds its reference)."""
    fn, inputs = as_function(op, sample)
    vjp, cotangents, float_outputs = _vjp_function(fn, inputs)
    if not cotangents:
        return
    primals = [*inputs, *cotangents]
    tangents = _random_like(primals, 3)
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach().requires_grad_(), t) for x, t in zip(inputs, tangents)]
        us = [fwAD.make_dual(u, t) for u, t in zip(cotangents, tangents[len(inputs):])]
        outputs = float_outputs(*duals)
        grads = torch.autograd.grad(outputs, duals, us, create_graph=True, allow_unused=True)
        got = [None if g is None else fwAD.unpack_dual(g).tangent for g in grads]
    _assert_second_order(got, _fd_of(vjp, primals, tangents)[:len(inputs)], "forward_ad over autograd.grad")


# ---------------------------------------------------------------- reverse over forward
# The gradient of a JVP-based objective <w, J(x) v> (Jacobian-vector-product training losses,
# Hessian-vector products by reverse over forward): reverse mode through the tangent
# computation. A rule that reads a detached intermediate, or a tangent formula that reads an
# auxiliary output whose gradient the backward drops, gives a correct tangent and a silently
# wrong gradient of it. Each check is directional (one reverse pass, two JVPs): the gradient
# w.r.t. inputs and tangents, dotted with random directions, against central differences of
# <w, J v> along them.

def _weighted_tangent(fn, inputs):
    """(objective(output tangents) = <w, tangents of fn's floating outputs>, random tangents v)."""
    tangents = _random_like(inputs, 0)
    outputs = fn(*inputs)
    floats = _float_outputs(outputs)
    weights = _random_like([outputs[i] for i in floats], 5)

    def objective(out_tangents):
        zero = torch.tensor(0.0, dtype=torch.float64)
        return sum((_dot(w, out_tangents[i]) for i, w in zip(floats, weights) if out_tangents[i] is not None), zero)

    return objective, tangents


def _assert_rev_over_fwd(fn, inputs, tangents, objective, grads, how):
    """<grads, directions> against central differences of the objective along them; grads
    are w.r.t. the inputs, then the tangents when they required grad too (else v stays put)."""
    point = [*inputs, *tangents]
    directions = _random_like(point, 6)[:len(grads)]
    n = len(inputs)

    def along(sign):
        shifted = [p + sign * FD_EPS * d for p, d in zip(point, directions)] + point[len(directions):]
        with torch.no_grad():
            return objective(jvp_full(fn, shifted[:n], shifted[n:])[1])

    expected = (along(1) - along(-1)) / (2 * FD_EPS)
    got = sum((_dot(d, g) for d, g in zip(directions, grads) if g is not None), torch.tensor(0.0, dtype=torch.float64))
    torch.testing.assert_close(got, expected, **FD_TOL,
                               msg=lambda m: f"reverse-over-forward ({how}): gradient of <w, J v> along a random direction: {m}")


def check_rev_over_fwd_func(op, sample: Sample) -> None:
    """Plain autograd beneath torch.func.jvp: inputs and tangents require grad, .grad of
    <w, tangent> (a JVP-based loss) against finite differences of the tangent."""
    fn, inputs = as_function(op, sample)
    objective, tangents = _weighted_tangent(fn, inputs)
    leaves = [t.detach().requires_grad_() for t in [*inputs, *tangents]]
    xs, vs = leaves[:len(inputs)], leaves[len(inputs):]
    loss = objective(jvp_full(fn, xs, vs)[1])
    grads = torch.autograd.grad(loss, leaves, allow_unused=True) if loss.requires_grad else [None] * len(leaves)
    _assert_rev_over_fwd(fn, inputs, tangents, objective, grads, "autograd beneath torch.func.jvp")


def check_rev_over_fwd_forward_ad(op, sample: Sample) -> None:
    """The same through torch.autograd.forward_ad, as users write a JVP loss: make_dual on
    inputs that require grad with constant tangents (formulas may then work in place on
    tensors autograd saved), autograd.grad of <w, unpack_dual(out).tangent> once the dual
    level is closed (inside it, the backward would also differentiate its own kernels
    forward: forward-over-reverse, which the fwd_over_rev checks cover)."""
    fn, inputs = as_function(op, sample)
    objective, tangents = _weighted_tangent(fn, inputs)
    xs = [x.detach().requires_grad_() for x in inputs]
    with fwAD.dual_level():
        outputs = fn(*[fwAD.make_dual(x, v) for x, v in zip(xs, tangents)])
        out_tangents = [fwAD.unpack_dual(o).tangent if isinstance(o, torch.Tensor) else None for o in outputs]
        loss = objective(out_tangents)
    grads = torch.autograd.grad(loss, xs, allow_unused=True) if loss.requires_grad else [None] * len(xs)
    _assert_rev_over_fwd(fn, inputs, tangents, objective, grads, "autograd.grad over forward_ad")


def check_rev_over_fwd_vjp(op, sample: Sample) -> None:
    """torch.func.vjp over torch.func.jvp (no tensor requires grad: functorch's own wrappers
    carry the outer derivative, which rules must see as one)."""
    fn, inputs = as_function(op, sample)
    objective, tangents = _weighted_tangent(fn, inputs)
    n = len(inputs)

    def loss(*xs_and_vs):
        return objective(jvp_full(fn, xs_and_vs[:n], xs_and_vs[n:])[1])

    _, pullback = torch.func.vjp(loss, *inputs, *tangents)
    grads = pullback(torch.tensor(1.0, dtype=torch.float64))
    _assert_rev_over_fwd(fn, inputs, tangents, objective, grads, "torch.func.vjp of torch.func.jvp")


VMAP_BATCH = 2


def check_vmap_jvp(op, sample: Sample) -> None:
    """vmap over the JVP with batched primals and batched tangents, against a Python loop."""
    fn, inputs = as_function(op, sample)
    tangents = [torch.stack(t) for t in zip(*(_random_like(inputs, 4 + b) for b in range(VMAP_BATCH)))]
    # the second primal a small step away: a batch of equal rows would hide mixed-up batch dims
    primals = [torch.stack([x, x + 1e-2 * s]) for x, s in zip(inputs, _random_like(inputs, 9))]

    def jvp(xs, ts):
        return jvp_full(fn, xs, ts)

    got_out, got_tangents = torch.vmap(jvp)(primals, tangents)
    for b in range(VMAP_BATCH):
        out, out_tangents = jvp([x[b] for x in primals], [t[b] for t in tangents])
        for k in _float_outputs(out):
            torch.testing.assert_close(got_out[k][b], out[k], msg=lambda m: f"vmap over jvp, primal output {k}, batch {b}: {m}")
            torch.testing.assert_close(got_tangents[k][b], out_tangents[k],
                                       msg=lambda m: f"vmap over jvp, tangent of output {k}, batch {b}: {m}")


def check_output_tangents(op, sample: Sample) -> None:
    """Every floating output gets a tangent when every input carries one, unless
    derivatives.yaml declares it not differentiable (output_differentiability): a backward
    that reads an output without one gives a silently wrong Hessian."""
    fn, inputs = as_function(op, sample)
    tangents = _random_like(inputs, 0)
    with fwAD.dual_level():
        outputs = fn(*[fwAD.make_dual(x, t) for x, t in zip(inputs, tangents)])
        missing = [i for i in _float_outputs(outputs) if fwAD.unpack_dual(outputs[i]).tangent is None]
    undeclared = [i for i in missing if i not in not_differentiable_outputs(op)]
    assert not undeclared, (
        f"floating outputs {undeclared} of {op} get no tangent and are not declared "
        f"not differentiable (output_differentiability in derivatives.yaml)"
    )


def not_differentiable_outputs(op) -> frozenset[int]:
    """Output positions an entry of derivatives.yaml declares not differentiable."""
    from torch_fwdad._generated.jvp_rules import ENTRIES

    from ..engine.schema import qualified_name

    name = qualified_name(op._schema)
    for entry in ENTRIES:
        if entry.name == name and entry.output_differentiability is not None:
            return frozenset(i for i, d in enumerate(entry.output_differentiability) if not d)
    return frozenset()


CHECKS = {
    "gradcheck": check_gradcheck,
    "jvp_vjp": check_jvp_vjp,
    "unchanged": check_unchanged,
    "partial": check_partial,
    "second_order": check_second_order,
    "fwd_over_rev_func": check_fwd_over_rev_func,
    "fwd_over_rev_forward_ad": check_fwd_over_rev_forward_ad,
    "vmap_jvp": check_vmap_jvp,
    "output_tangents": check_output_tangents,
    "rev_over_fwd_func": check_rev_over_fwd_func,
    "rev_over_fwd_forward_ad": check_rev_over_fwd_forward_ad,
    "rev_over_fwd_vjp": check_rev_over_fwd_vjp,
}


def check_same_error(op, sample: ErrorSample) -> None:
    """Bad input fails with the same exception type and message with and without tangents."""
    def failure(dual: bool):
        try:
            with fwAD.dual_level() if dual else contextlib.nullcontext():
                args = [fwAD.make_dual(a, torch.ones_like(a)) if dual and _can_be_dual(a) else a for a in sample.args]
                op(*args, **sample.kwargs)
        except Exception as error:  # noqa: BLE001 - comparing whatever upstream raises
            return type(error), str(error)
        return None

    plain, dual = failure(dual=False), failure(dual=True)
    assert plain is not None, f"bad input '{sample.desc}' did not fail without tangents"
    assert dual == plain, f"with tangents: {dual}; without: {plain}"


def _can_be_dual(arg) -> bool:
    # PyTorch cannot make a sparse tensor dual (make_dual reads storage sparse layouts lack)
    return isinstance(arg, torch.Tensor) and arg.layout == torch.strided and (arg.is_floating_point() or arg.is_complex())
