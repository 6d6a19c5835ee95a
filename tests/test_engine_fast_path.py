"""The C++ no-tangent test (engine/_fast_path.cpp): active where built, invisible otherwise.

The engine's behaviour on both paths is checked by the modules conftest.py runs twice
(BOTH_ENGINE_PATHS); these tests check the path itself: that the C++ kernel is the one the
dispatcher runs when it is built, that it never enters Python without a tangent, that it
sends every call with a tangent to Python (views of a dual base included), that its results
are bitwise PyTorch's, and that anything it cannot be trusted with falls back silently.
"""

import contextlib
import os
import pathlib
import subprocess
import sys

import pytest
import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F

import torch_fwdad
from torch_fwdad.engine import fast_path
from torch_fwdad.testing import plain_pytorch

ENGINE_DIR = pathlib.Path(fast_path.__file__).parent
BUILT_FILES = sorted(ENGINE_DIR.glob("_fast_path*.so"))
built = pytest.mark.skipif(not torch_fwdad.engine_info()["built"], reason="C++ kernel not built here (no compiler at install)")


@pytest.fixture
def cpp_path():
    torch_fwdad.engine.use_python_path(False)
    yield
    torch_fwdad.engine.use_python_path(False)


def python_frames_in_engine(fn) -> list[str]:
    """The engine functions (engine/kernel.py, engine/in_place.py) Python entered during fn()."""
    entered = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.endswith(("engine/kernel.py", "engine/in_place.py")):
            entered.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return entered


def test_a_built_kernel_is_the_active_path():
    """Fails if the extension was built (a file is next to fast_path.py) yet did not load."""
    if not BUILT_FILES:
        pytest.skip("no C++ kernel built in this tree")
    if os.environ.get(fast_path.ENVIRONMENT_VARIABLE) == "python":
        pytest.skip(f"{fast_path.ENVIRONMENT_VARIABLE}=python forces the Python path")
    info = torch_fwdad.engine_info()
    assert info["built"], info
    assert info["path"] == "c++", info


@built
def test_the_dispatcher_runs_the_cpp_kernel(cpp_path):
    kernel = torch.library.get_kernel(torch.ops.aten._cdist_forward.default, "AutogradCPU")
    assert "_fast_path.cpp" in repr(kernel)
    torch_fwdad.engine.use_python_path(True)
    kernel = torch.library.get_kernel(torch.ops.aten._cdist_forward.default, "AutogradCPU")
    assert "_fast_path.cpp" not in repr(kernel)
    assert torch_fwdad.engine_info()["path"] == "python"


@built
def test_no_tangent_never_enters_python(cpp_path):
    x, y = torch.randn(4, 3), torch.randn(5, 3)
    index = torch.tensor([0, 2])
    no_tangent = lambda: (torch.cdist(x, y), x.clone().index_reduce_(0, index, y[:2], "prod"))  # noqa: E731
    assert python_frames_in_engine(no_tangent) == []
    with fwad.dual_level():
        assert python_frames_in_engine(no_tangent) == []
    torch_fwdad.engine.use_python_path(True)
    assert python_frames_in_engine(no_tangent) != []  # the probe sees Python kernels


@built
def test_a_tangent_goes_to_python(cpp_path):
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    with fwad.dual_level():
        dual = fwad.make_dual(x, torch.randn_like(x))
        entered = python_frames_in_engine(lambda: torch.cdist(dual, y))
    assert "override" in entered


@pytest.mark.parametrize("path", ["c++", "python"])
def test_a_view_created_before_its_base_got_a_tangent(path):
    """AutogradMeta::fw_grad reads a view's tangent from its base: the C++ test must too."""
    if path == "c++" and not torch_fwdad.engine_info()["built"]:
        pytest.skip("C++ kernel not built here")
    torch_fwdad.engine.use_python_path(path == "python")
    try:
        y = torch.randn(5, 3, dtype=torch.float64)
        base = torch.randn(6, 3, dtype=torch.float64)
        view = base[:4]
        tangent = torch.randn(6, 3, dtype=torch.float64)
        with fwad.dual_level():
            base.copy_(fwad.make_dual(base.clone(), tangent))  # the base gains a tangent in place
            out = fwad.unpack_dual(torch.cdist(view, y))
        expected = torch.func.jvp(lambda a: torch.cdist(a[:4], y), (base.detach(),), (tangent,))[1]
        assert out.tangent is not None
        torch.testing.assert_close(out.tangent, expected)
    finally:
        torch_fwdad.engine.use_python_path(not torch_fwdad.engine_info()["built"])


def _calls():
    """Overridden ops without tangents: (name, fn(inputs) -> outputs, inputs requiring grad)."""
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    image, grid = torch.randn(2, 3, 5, 5, dtype=torch.float64), torch.rand(2, 4, 4, 2, dtype=torch.float64) * 2 - 1
    weight, offsets = torch.randn(10, 4, dtype=torch.float64), torch.tensor([0, 3])
    indices = torch.tensor([1, 2, 4, 5, 8])
    index, source = torch.tensor([0, 2, 0]), torch.randn(3, 3, dtype=torch.float64)
    return [
        ("cdist", lambda a, b: torch.cdist(a, b), (x, y)),
        ("pdist", lambda a: F.pdist(a), (x,)),
        ("grid_sample", lambda a, g: F.grid_sample(a, g, align_corners=False), (image, grid)),
        ("embedding_bag", lambda w: F.embedding_bag(indices, w, offsets, mode="max"), (weight,)),
        ("index_reduce", lambda a, s: a.index_reduce(0, index, s, "prod"), (x[:3].clone(), source)),
        ("multi_margin_loss", lambda a: F.multi_margin_loss(a, torch.tensor([0, 1, 2, 0, 1, 2])), (x,)),
    ]


@built
@pytest.mark.parametrize("in_level", [False, True], ids=["no_level", "in_level"])
@pytest.mark.parametrize("case", range(len(_calls())), ids=[name for name, *_ in _calls()])
def test_outputs_and_gradients_bitwise_plain_pytorch(cpp_path, case, in_level):
    _, fn, inputs = _calls()[case]

    def run():
        leaves = [t.clone().requires_grad_() for t in inputs]
        with fwad.dual_level() if in_level else contextlib.nullcontext():
            out = fn(*leaves)
        grads = torch.autograd.grad(out.sum(), leaves)
        return out.detach(), grads

    ours = run()
    with plain_pytorch():
        plain = run()
    assert torch.equal(ours[0], plain[0])
    assert all(torch.equal(a, b) for a, b in zip(ours[1], plain[1]))


def test_a_kernel_built_for_another_torch_is_not_loaded(monkeypatch):
    if not torch_fwdad.engine_info()["built"]:
        pytest.skip("C++ kernel not built here")
    from torch_fwdad.engine import _fast_path
    monkeypatch.setattr(_fast_path, "TORCH_VERSION", (2, 12, 1))
    extension, reason = fast_path.extension.load()
    assert extension is None
    assert "built against torch 2.12.1" in reason


def test_the_environment_variable_forces_python_silently():
    code = ("import warnings; warnings.simplefilter('error'); import torch_fwdad; "
            "print(torch_fwdad.engine_info()['path'])")
    env = {**os.environ, fast_path.ENVIRONMENT_VARIABLE: "python", "PYTHONWARNINGS": "error"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "python"
    assert done.stderr == ""


def test_asking_for_cpp_where_it_is_missing_says_why(monkeypatch):
    monkeypatch.setattr(fast_path.extension, "module", None)
    monkeypatch.setattr(fast_path.extension, "reason", "C++ kernel not built (test)")
    with pytest.raises(RuntimeError, match="C\\+\\+ kernel is not available: C\\+\\+ kernel not built"):
        torch_fwdad.engine.use_python_path(False)
