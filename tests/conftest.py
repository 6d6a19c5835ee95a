import pytest
import torch

import torch_fwdad

# Modules run on both engine paths (torch_fwdad/engine/fast_path.py): the C++ no-tangent
# test, where it is built, and the pure-Python kernels that run wherever it is not.
BOTH_ENGINE_PATHS = frozenset({
    "test_engine", "test_public_functions", "test_forward_over_reverse", "test_compile",
    "test_models_nested", "test_custom_ops",
})


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__.rpartition(".")[2] in BOTH_ENGINE_PATHS:
        metafunc.fixturenames.append("engine_path")
        metafunc.parametrize("engine_path", ["c++", "python"], indirect=True, scope="module")


@pytest.fixture(scope="module")
def engine_path(request):
    built = torch_fwdad.engine_info()["built"]
    if request.param == "c++" and not built:
        pytest.skip(f"C++ kernel not built here: {torch_fwdad.engine_info()['reason']}")
    torch_fwdad.engine.use_python_path(request.param == "python")
    yield request.param
    torch_fwdad.engine.use_python_path(not built)


@pytest.fixture(autouse=True)
def _enabled_and_deterministic():
    """Every test starts with torch_fwdad enabled; a test that disables it cannot leak that."""
    torch.manual_seed(0)
    yield
    if not torch_fwdad.is_enabled():
        torch_fwdad.enable()
