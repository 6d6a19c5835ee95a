import pytest
import torch

import torch_fwdad

# Modules run on both engine paths (torch_fwdad/engine/fast_path.py): the C++ no-tangent
# test, where it is built, and the pure-Python kernels that run wherever it is not.
BOTH_ENGINE_PATHS = frozenset({
    "test_engine", "test_public_functions", "test_forward_over_reverse", "test_compile",
    "test_models_nested", "test_custom_ops",
})
# ...except tests whose path is not the fixture's: they run a subprocess (which takes the
# default path), or make every call with a tangent (Python on both paths) for minutes.
ONE_ENGINE_PATH = frozenset({
    "test_import_is_silent_and_leaves_users_override_warning", "test_reload_is_harmless",
    "test_no_memory_growth_over_many_jvps",
})


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__.rpartition(".")[2] in BOTH_ENGINE_PATHS and metafunc.function.__name__ not in ONE_ENGINE_PATH:
        metafunc.parametrize("engine_path", ["c++", "python"], indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def engine_path(request):
    """The path a module's tests run on: parametrized for BOTH_ENGINE_PATHS, else the default."""
    path = getattr(request, "param", None)
    if path is None:
        yield None
        return
    built = torch_fwdad.engine_info()["built"]
    if path == "c++" and not built:
        pytest.skip(f"C++ kernel not built here: {torch_fwdad.engine_info()['reason']}")
    torch_fwdad.engine.use_python_path(path == "python")
    try:
        yield path
    finally:
        torch_fwdad.engine.use_python_path(not built)


@pytest.fixture(autouse=True)
def _enabled_and_deterministic():
    """Every test starts with torch_fwdad enabled; a test that disables it cannot leak that."""
    torch.manual_seed(0)
    yield
    if not torch_fwdad.is_enabled():
        torch_fwdad.enable()
