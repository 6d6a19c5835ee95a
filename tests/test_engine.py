"""The override mechanism: fast path, dual path, composition with torch.func, enable/disable."""

import inspect
import subprocess
import sys

import pytest
import torch
import torch.autograd.forward_ad as fwAD

import torch_fwdad
from torch_fwdad.engine import BuiltinEntry, install_builtin
from torch_fwdad.engine.upstream import has_forward_formula, upstream_entries, upstream_forward_table

CALLS = {"rule": 0}


@torch.library.custom_op("fwdad_engine_test::cube", mutates_args=())
def cube(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x**3 * y


def _cube_backward(ctx, grad):
    x, y = ctx.saved_tensors
    return grad * 3 * x**2 * y, grad * x**3


cube.register_autograd(_cube_backward, setup_context=lambda ctx, inputs, output: ctx.save_for_backward(*inputs))


@torch_fwdad.register_jvp(cube)
def _cube_jvp(primals, tangents, output):
    CALLS["rule"] += 1
    (x, y), (x_t, y_t) = primals, tangents
    total = None if x_t is None else 3 * x**2 * y * x_t
    return total if y_t is None else (x**3 * y_t if total is None else total + x**3 * y_t)


def _spd(n=4):
    a = torch.randn(n, n, dtype=torch.float64)
    return a @ a.mT + n * torch.eye(n, dtype=torch.float64)


def _symmetric(n=4):
    t = torch.randn(n, n, dtype=torch.float64)
    return t + t.mT


def _central_difference(fn, x, t, eps=1e-6):
    return (fn(x + eps * t) - fn(x - eps * t)) / (2 * eps)


def test_import_is_silent_and_leaves_users_override_warning():
    code = (
        "import warnings, torch\n"
        "warnings.simplefilter('error')\n"
        "import torch_fwdad\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    lib = torch.library.Library('aten', 'IMPL')\n"
        "    lib.impl('cosh', lambda ks, x: x, 'Autograd', with_keyset=True)\n"
        "print(any('Overriding a previously registered kernel' in str(w.message) for w in seen))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.strip() == "True", "our silencing used up PyTorch's one-time warning for the user"


def test_registered_ops_names_the_yaml_entry():
    rules = {rule.name: rule for rule in torch_fwdad.registered_ops()}
    assert rules["aten::cholesky"].origin.startswith("derivatives.yaml:")
    assert rules["fwdad_engine_test::cube"].origin == "register_jvp"


def test_disable_restores_pytorchs_error_and_enable_reinstalls():
    a, t = _spd(), _symmetric()
    torch_fwdad.disable()
    assert torch_fwdad.registered_ops() == []
    with pytest.raises(NotImplementedError, match="Trying to use forward AD with cholesky"):
        torch.func.jvp(torch.cholesky, (a,), (t,))
    torch_fwdad.enable()
    _, tangent = torch.func.jvp(torch.cholesky, (a,), (t,))
    torch.testing.assert_close(tangent, _central_difference(torch.cholesky, a, t), atol=1e-6, rtol=1e-5)


def test_no_rule_call_outside_a_dual_level_or_without_tangents():
    x, y = torch.randn(3), torch.randn(3)
    before = CALLS["rule"]
    cube(x, y)
    with fwAD.dual_level():
        cube(x, y)
    assert CALLS["rule"] == before
    with fwAD.dual_level():
        fwAD.unpack_dual(cube(fwAD.make_dual(x, torch.ones(3)), y))
    assert CALLS["rule"] == before + 1


def test_a_tangent_is_found_wherever_the_dispatcher_passes_it():
    """The in-level test for "any tangent" reads arguments as the dispatcher passes them:
    a tangent on the second tensor, on one element of a Tensor[], or on a keyword-only
    tensor must each reach the rule (against finite differences)."""
    x, y, t = _cdist_inputs()
    with fwAD.dual_level():
        on_second = fwAD.unpack_dual(torch.cdist(x, fwAD.make_dual(x[:2].clone(), t[:2]))).tangent
    torch.testing.assert_close(on_second, _central_difference(lambda b: torch.cdist(x, b), x[:2].clone(), t[:2]))

    a, b, tb = (torch.randn(2, 3, 3, dtype=torch.float64) for _ in range(3))
    with fwAD.dual_level():
        outs = torch._foreach_mm([a[0], a[1]], [b[0], fwAD.make_dual(b[1], tb[1])])
        tangents = [fwAD.unpack_dual(out).tangent for out in outs]
    assert tangents[0] is None
    torch.testing.assert_close(tangents[1], a[1] @ tb[1])

    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default
    q, k, v = (torch.randn(1, 2, 4, 8, dtype=torch.float64) for _ in range(3))
    mask, mask_t = torch.randn(4, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64)
    with fwAD.dual_level():
        on_mask = fwAD.unpack_dual(flash(q, k, v, attn_mask=fwAD.make_dual(mask, mask_t))[0]).tangent
    expected = _central_difference(lambda m: flash(q, k, v, attn_mask=m)[0], mask, mask_t)
    torch.testing.assert_close(on_mask, expected, atol=1e-6, rtol=1e-5)


def test_no_tangent_in_a_level_passes_unpackable_and_integer_arguments_through():
    """Sparse and integer tensors cannot carry tangents: inside a level without any, the
    call is upstream's, same values and same backward node."""
    adjacency = torch.eye(4, dtype=torch.float64).to_sparse()
    dense = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    plain = torch.sparse.mm(adjacency, dense)
    with fwAD.dual_level():
        inside = torch.sparse.mm(adjacency, dense)
    assert torch.equal(plain, inside) and type(plain.grad_fn) is type(inside.grad_fn)
    weight, index = torch.randn(10, 3), torch.tensor([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = torch.tensor([0, 4])
    plain = torch.nn.functional.embedding_bag(index, weight, offsets)
    with fwAD.dual_level():
        assert torch.equal(torch.nn.functional.embedding_bag(index, weight, offsets), plain)


def test_fast_path_returns_upstream_result_and_graph():
    x = torch.randn(3, requires_grad=True)
    out = cube(x, torch.ones(3))
    with fwAD.dual_level():
        same = cube(x, torch.ones(3))
    assert torch.equal(out, same)
    assert type(out.grad_fn) is type(same.grad_fn)


def test_forward_ad_and_func_jvp_agree_with_finite_differences():
    x, y, tx, ty = (torch.randn(5, dtype=torch.float64) for _ in range(4))
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(cube(fwAD.make_dual(x, tx), fwAD.make_dual(y, ty))).tangent
    _, func_tangent = torch.func.jvp(cube, (x, y), (tx, ty))
    expected = (cube(x + 1e-6 * tx, y + 1e-6 * ty) - cube(x - 1e-6 * tx, y - 1e-6 * ty)) / 2e-6
    torch.testing.assert_close(tangent, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(func_tangent, tangent)


def test_composes_with_vmap_jacfwd_and_nesting():
    a, t = _spd(), _symmetric()
    batch = torch.stack([_symmetric() for _ in range(3)])
    per_tangent = torch.func.vmap(lambda v: torch.func.jvp(torch.cholesky, (a,), (v,))[1])(batch)
    for k in range(3):
        torch.testing.assert_close(per_tangent[k], torch.func.jvp(torch.cholesky, (a,), (batch[k],))[1])

    def sym_cholesky(m):
        return torch.cholesky(m + m.mT)

    torch.testing.assert_close(torch.func.jacfwd(sym_cholesky)(a), torch.func.jacrev(sym_cholesky)(a))

    def first_order(m):
        return torch.func.jvp(sym_cholesky, (m,), (t,))[1]

    _, second = torch.func.jvp(first_order, (a,), (t,))
    torch.testing.assert_close(second, _central_difference(first_order, a, t), atol=1e-5, rtol=1e-4)


def test_reverse_over_forward_and_hessian_match_reverse_over_reverse():
    a, t = _spd(3), _symmetric(3)

    def f(m):
        return torch.cholesky(m + m.mT).sum()

    def directional(m):
        return torch.func.jvp(f, (m,), (t,))[1]

    _, hvp_reverse = torch.autograd.functional.hvp(f, a, t)  # plain reverse-over-reverse
    torch.testing.assert_close(torch.func.grad(directional)(a), hvp_reverse)
    torch.testing.assert_close(torch.func.hessian(f)(a), torch.autograd.functional.hessian(f, a))


def test_torch_compile_of_the_primal_runs():
    a = _spd()
    compiled = torch.compile(torch.cholesky, backend="eager", fullgraph=True)
    assert torch.equal(compiled(a), torch.cholesky(a))


def test_entries_for_other_torch_versions_are_skipped_not_fatal():
    missing = BuiltinEntry("aten::no_such_op_in_any_torch", "no_such_op_in_any_torch(Tensor self) -> Tensor", None, "x.yaml:1")
    changed = BuiltinEntry("aten::cholesky", "cholesky(Tensor self) -> Tensor", None, "x.yaml:2")
    upstream = BuiltinEntry("aten::sin", "sin(Tensor self) -> Tensor", None, "x.yaml:3")
    status = install_builtin((missing, changed, upstream))
    assert status["aten::no_such_op_in_any_torch"].startswith("torch ") and "has no overload" in status["aten::no_such_op_in_any_torch"]
    assert "schema differs" in status["aten::cholesky"]
    assert "has its own forward formula" in status["aten::sin"]


def test_register_jvp_refuses_an_upstream_formula_and_a_second_rule():
    with pytest.raises(RuntimeError, match="already has a forward-mode formula in PyTorch"):
        torch_fwdad.register_jvp("aten::sin", lambda p, t, o: None)
    with pytest.raises(RuntimeError, match="already has a forward rule"):
        torch_fwdad.register_jvp(cube, _cube_jvp)


def test_rule_errors_name_the_operator():
    @torch.library.custom_op("fwdad_engine_test::twice", mutates_args=())
    def twice(x: torch.Tensor) -> torch.Tensor:
        return 2 * x

    torch_fwdad.register_jvp(twice, lambda primals, tangents, out: tangents[0][:1])
    try:
        with pytest.raises(RuntimeError, match=r"returned a tangent of shape \(1,\).*which has shape \(3,\)"):
            torch.func.jvp(twice, (torch.randn(3),), (torch.randn(3),))
    finally:
        torch_fwdad.unregister_jvp(twice)


def test_no_memory_growth_over_many_jvps():
    a, t = _spd(64), _symmetric(64)

    def rss_mb():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / 2**20

    for _ in range(200):
        torch.func.jvp(torch.cholesky, (a,), (t,))
    before = rss_mb()
    for _ in range(1500):
        torch.func.jvp(torch.cholesky, (a,), (t,))
    # each call makes several 32 KB tensors: a leak of one per call would be ~48 MB
    assert rss_mb() - before < 20


def test_plain_forward_over_reverse_is_right_not_refused():
    # forward_ad over autograd.grad(create_graph=True): the Hessian-vector product torch.func
    # gives (tests/test_forward_over_reverse.py checks them against finite differences)
    a, t = _spd(3), _symmetric(3)
    x = a.clone().requires_grad_()

    def loss(m):
        return torch.cholesky(m).pow(2).sum()

    with fwAD.dual_level():
        dual = fwAD.make_dual(x, t)
        y = loss(dual)
        first_order = torch.autograd.grad(y, dual, retain_graph=True)[0]  # plain backward still works
        hvp = fwAD.unpack_dual(torch.autograd.grad(y, dual, create_graph=True)[0]).tangent
    torch.testing.assert_close(fwAD.unpack_dual(first_order).primal, torch.func.grad(loss)(a))
    torch.testing.assert_close(hvp, torch.func.jvp(torch.func.grad(loss), (a,), (t,))[1])


CDIST = torch.ops.aten._cdist_forward.default


def _cdist_results(x, y, t):
    """The primal and the JVP through cdist: what every layering below must keep giving."""
    return torch.cdist(x, y), torch.func.jvp(lambda a: torch.cdist(a, y), (x,), (t,))[1]


def _cdist_inputs():
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(*shape, dtype=torch.float64, generator=g) for shape in ((4, 3), (5, 3), (4, 3)))


# torch < 2.13 refuses a second Python kernel on a key unless asked (ours is one)
ALLOW_OVERRIDE = {"allow_override": True} if "allow_override" in inspect.signature(torch.library.Library.impl).parameters else {}
OTHER_LIBRARY = pytest.mark.filterwarnings("ignore:(?s).*Overriding a previously registered kernel:UserWarning")


@OTHER_LIBRARY
def test_a_library_stacked_above_keeps_working_through_disable_and_enable():
    x, y, t = _cdist_inputs()
    expected_out, expected_tangent = _cdist_results(x, y, t)
    beneath = torch.library.get_kernel(CDIST, "AutogradCPU")  # torch_fwdad's kernel
    calls = []

    def above(keyset, *args, **kwargs):
        calls.append(1)
        return beneath.call_boxed(keyset, *args, **kwargs)

    library = torch.library.Library("aten", "IMPL")
    library.impl(CDIST, above, "Autograd", with_keyset=True, **ALLOW_OVERRIDE)
    try:
        torch_fwdad.disable()
        assert torch.equal(torch.cdist(x, y), expected_out) and calls
        with pytest.raises(NotImplementedError, match="Trying to use forward AD with _cdist_forward"):
            _cdist_results(x, y, t)
        torch_fwdad.enable()
        out, tangent = _cdist_results(x, y, t)
        assert torch.equal(out, expected_out) and torch.equal(tangent, expected_tangent)
    finally:
        torch_fwdad.enable()
        library._destroy()
    torch_fwdad.disable()  # the layer above is gone: this one really uninstalls
    assert torch.library.get_kernel(CDIST, "AutogradCPU") is not None and torch.equal(torch.cdist(x, y), expected_out)
    torch_fwdad.enable()
    out, tangent = _cdist_results(x, y, t)
    assert torch.equal(out, expected_out) and torch.equal(tangent, expected_tangent)


@OTHER_LIBRARY
def test_a_vanished_library_beneath_gives_a_clear_error_and_reinstalling_recovers():
    x, y, t = _cdist_inputs()
    expected_out, expected_tangent = _cdist_results(x, y, t)
    torch_fwdad.disable()
    upstream = torch.library.get_kernel(CDIST, "AutogradCPU")
    library = torch.library.Library("aten", "IMPL")
    library.impl(CDIST, lambda keyset, *args, **kwargs: upstream.call_boxed(keyset, *args, **kwargs), "Autograd", with_keyset=True)
    torch_fwdad.enable()  # installs over the user's kernel
    try:
        out, tangent = _cdist_results(x, y, t)
        assert torch.equal(out, expected_out) and torch.equal(tangent, expected_tangent)
    finally:
        library._destroy()
    for call in (lambda: torch.cdist(x, y), lambda: _cdist_results(x, y, t)):
        with pytest.raises(RuntimeError, match=r"torch_fwdad: the Autograd kernel beneath torch_fwdad's forward rule for aten._cdist_forward.default was removed") as error:
            call()
        assert "invalidated" not in str(error.value)
    torch_fwdad.disable()
    torch_fwdad.enable()
    out, tangent = _cdist_results(x, y, t)
    assert torch.equal(out, expected_out) and torch.equal(tangent, expected_tangent)


def test_reload_is_harmless():
    code = (
        "import importlib, torch, torch_fwdad\n"
        "before, status = torch_fwdad.registered_ops(), torch_fwdad.builtin_status\n"
        "importlib.reload(torch_fwdad)\n"
        "assert torch_fwdad.registered_ops() == before, 'rules changed'\n"
        "assert torch_fwdad.builtin_status == status, torch_fwdad.builtin_status\n"
        "x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)\n"
        "f = lambda a: torch.cdist(a, y)\n"
        "t = torch.func.jvp(f, (x,), (x,))[1]\n"
        "torch.testing.assert_close(t, (f(x + 1e-6 * x) - f(x - 1e-6 * x)) / 2e-6)\n"
        "torch_fwdad.disable(); torch_fwdad.enable()\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_failed_registration_leaves_nothing_behind(monkeypatch):
    from torch_fwdad.engine import registry

    @torch.library.custom_op("fwdad_engine_test::double", mutates_args=())
    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    op = double._opoverload
    kernel_before = repr(torch.library.get_kernel(op, "AutogradCPU"))
    real = registry._register_autograd_kernel
    installed = []

    def fail_on_the_forward_override(op, kernel):
        if installed:  # the derived backward went in first; the override fails
            raise RuntimeError("simulated registration failure")
        installed.append(real(op, kernel))
        return installed[-1]

    monkeypatch.setattr(registry, "_register_autograd_kernel", fail_on_the_forward_override)
    with pytest.raises(RuntimeError, match="simulated registration failure"):
        torch_fwdad.register_jvp(double, lambda p, t, out: 2 * t[0], transpose=True)
    monkeypatch.undo()
    assert repr(torch.library.get_kernel(op, "AutogradCPU")) == kernel_before
    assert "fwdad_engine_test::double" not in {rule.name for rule in torch_fwdad.registered_ops()}
    torch_fwdad.disable()
    torch_fwdad.enable()
    torch_fwdad.register_jvp(double, lambda p, t, out: 2 * t[0])  # not "already has a rule"
    try:
        x = torch.randn(3)
        torch.testing.assert_close(torch.func.jvp(double, (x,), (torch.ones(3),))[1], torch.full((3,), 2.0))
    finally:
        torch_fwdad.unregister_jvp(double)


def test_forward_ad_in_a_level_the_python_global_does_not_show():
    """What a compiled program does: enter the dual level in C++ only (eager backend)."""
    x, y, t = _cdist_inputs()
    _, expected = _cdist_results(x, y, t)
    level = torch._C._enter_dual_level()
    try:
        assert fwAD._current_level == -1
        dual = torch._VF._make_dual(x, t, level)
        tangent = torch._VF._unpack_dual(torch.cdist(dual, y), level).tangent
    finally:
        torch._C._exit_dual_level(level=level)
    torch.testing.assert_close(tangent, expected)


def test_the_import_time_scan_of_torchs_table_agrees_with_its_yaml():
    entries = upstream_entries()
    scanned = upstream_forward_table()
    assert len(entries) > 600 and scanned.keys() == entries.keys()
    assert {name: has_forward_formula(entry) for name, entry in entries.items()} == scanned
    # both kinds of forward key are seen: "result" and an output's own name
    assert scanned["cholesky"] is False and scanned["sin"] is True and scanned["sort.stable"] is True
