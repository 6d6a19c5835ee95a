"""Forward mode through torch.distributed on real gloo groups (127.0.0.1), world sizes 2 and 4.

Each test launches one group that runs a list of cases from test_distributed_cases.py on
every rank; ranks agree on failures after each case, and the launch is bounded in time,
so a failing rank never hangs the suite.
"""

import pytest
import torch.distributed as dist

from torch_fwdad.distributed.launch import run_cases

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed with gloo")

COLLECTIVES = [
    "case_all_reduce", "case_all_reduce_ties_and_zeros", "case_all_gather_every_dim", "case_reduce_scatter",
    "case_all_to_all_and_broadcast", "case_autograd_namespace_and_coalesced",
]
C10D_AND_DTENSOR = [
    "case_c10d_in_place", "case_refusals_name_the_op", "case_reverse_mode_and_primal_bitwise_unchanged",
    "case_disable_restores_upstream", "case_dtensor_forward_ad",
]


def assert_all_pass(cases, world_size):
    results = run_cases("test_distributed_cases", cases, world_size, timeout=150)
    failures = {name: result.errors for name, result in results.items() if not result.ok}
    assert not failures, "\n\n".join(f"{name} (rank {rank}):\n{error}" for name, errors in failures.items() for rank, error in errors.items())


def test_collectives_world_size_2():
    assert_all_pass(COLLECTIVES, 2)


def test_c10d_and_dtensor_world_size_2():
    assert_all_pass(C10D_AND_DTENSOR, 2)


@pytest.mark.slow
def test_collectives_world_size_4():
    assert_all_pass(COLLECTIVES, 4)


@pytest.mark.slow
def test_c10d_and_dtensor_world_size_4():
    assert_all_pass(C10D_AND_DTENSOR, 4)


def test_a_failing_rank_does_not_hang_its_peers():
    results = run_cases("test_distributed_cases", ["case_fails_on_rank_0_only", "case_all_to_all_and_broadcast"], 2, timeout=120)
    assert set(results["case_fails_on_rank_0_only"].errors) == {0, 1}
    assert "deliberate" in results["case_fails_on_rank_0_only"].errors[0]
    assert results["case_all_to_all_and_broadcast"].ok
