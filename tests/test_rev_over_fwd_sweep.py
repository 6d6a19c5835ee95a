"""tools/rev_over_fwd_sweep.py: its checks catch plain PyTorch's wrong layer_norm and pass a right op."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.gradcheck import GradcheckError

from torch_fwdad.report import second_order
from torch_fwdad.testing import plain_pytorch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = [second_order.CHECKS[column] for column in second_order.REV_OVER_FWD]


def _input():
    return [torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_plain_layer_norm_is_caught(check):
    # torch 2.13: native_layer_norm's forward formula reads rstd, whose gradient its backward drops
    with plain_pytorch(), pytest.raises(GradcheckError, match="finite differences of the tangent mismatch"):
        check(None, lambda x: F.layer_norm(x, (5,)), _input())


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_a_right_formula_passes(check):
    with plain_pytorch():
        check(None, lambda x: torch.sin(x).exp(), _input())


@pytest.mark.slow
def test_the_sweep_in_worker_processes(tmp_path):
    output = tmp_path / "sweep.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "rev_over_fwd_sweep.py"), "--ops",
                    "sin,nn.functional.layer_norm", "--jobs", "1", "--output", str(output)],
                   check=True, timeout=900, capture_output=True)
    results = json.loads(output.read_text())["results"]
    for column in second_order.REV_OVER_FWD:
        assert results["nn.functional.layer_norm"][column]["without"]["status"] == "wrong"
        assert {results["sin"][column][mode]["status"] for mode in ("without", "with")} == {"pass"}
