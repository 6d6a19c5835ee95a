import pytest
import torch

import torch_fwdad


@pytest.fixture(autouse=True)
def _enabled_and_deterministic():
    """Every test starts with torch_fwdad enabled; a test that disables it cannot leak that."""
    torch.manual_seed(0)
    yield
    if not torch_fwdad.is_enabled():
        torch_fwdad.enable()
