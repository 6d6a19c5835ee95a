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
    "case_disable_restores_upstream", "case_dtensor_forward_ad", "case_docs_tensor_parallel_example",
    "case_tensor_parallel_without_a_weight_tangent_is_refused_not_zero",
    "case_torch_func_through_dtensor_refused_alike_on_every_rank", "case_dtensor_tangent_in_other_storage",
]
FSDP2 = ["case_fsdp2_forward_ad_wrt_input_and_parameters", "case_fsdp2_refusals_and_reverse_mode", "case_docs_fsdp2_example"]
# CI runs one 2-rank group over these; it starts with a case that fails on rank 0 only, so
# it also shows that a failure is reported on every rank and the next cases still run.
CI_SUBSET = [
    "case_fails_on_rank_0_only", "case_all_reduce", "case_all_gather_every_dim", "case_reduce_scatter",
    "case_c10d_in_place", "case_refusals_name_the_op", "case_dtensor_forward_ad",
    "case_fsdp2_forward_ad_wrt_input_and_parameters", "case_torch_func_through_dtensor_refused_alike_on_every_rank",
    "case_dtensor_tangent_in_other_storage",
]


def failures_of(results):
    return "\n\n".join(f"{name} (rank {rank}):\n{error}" for name, result in results.items() for rank, error in result.errors.items())


def assert_all_pass(cases, world_size):
    results = run_cases("test_distributed_cases", cases, world_size, timeout=600, collective_timeout=60)
    assert all(result.ok for result in results.values()), failures_of(results)


def test_world_size_2_subset():
    results = run_cases("test_distributed_cases", CI_SUBSET, 2, timeout=300, collective_timeout=60)
    deliberate = results.pop("case_fails_on_rank_0_only")
    assert set(deliberate.errors) == {0, 1} and "deliberate failure" in deliberate.errors[0], deliberate
    assert all(result.ok for result in results.values()), failures_of(results)


@pytest.mark.slow
def test_every_case_world_size_2():
    assert_all_pass(COLLECTIVES + C10D_AND_DTENSOR + FSDP2, 2)


@pytest.mark.slow
def test_every_case_world_size_4():
    assert_all_pass(COLLECTIVES + C10D_AND_DTENSOR + FSDP2, 4)


# --- in one process: a one-rank gloo group is enough for what does not need peers ---------

import subprocess  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.distributed._functional_collectives as fc  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from torch_fwdad.testing import plain_pytorch  # noqa: E402


@pytest.fixture
def one_rank_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield dist.group.WORLD
    dist.destroy_process_group()


class _PassThrough(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def _reverse_through_async_tensors(group):
    v = torch.arange(12, dtype=torch.float64).reshape(4, 3).requires_grad_()
    y = fc.all_gather_tensor(fc.all_reduce(v.sin(), "sum", group), 1, group)  # AsyncCollectiveTensor in
    y.exp().sum().backward()
    with _PassThrough():  # a dispatch mode routes Python kernels through torch.library's table too
        fc.all_reduce(v.cos(), "sum", group).sum().backward()
    return y.detach(), v.grad


def test_reverse_mode_through_async_tensors_and_modes_is_bitwise_upstream(one_rank_group):
    with_rules = _reverse_through_async_tensors(one_rank_group)
    with plain_pytorch():
        upstream = _reverse_through_async_tensors(one_rank_group)
    again = _reverse_through_async_tensors(one_rank_group)
    for ours, theirs, re_enabled in zip(with_rules, upstream, again):
        assert torch.equal(ours, theirs) and torch.equal(re_enabled, theirs)


def _c10d_calls_without_tangents(group):
    seen = []
    for make in (lambda: torch.ones(3), lambda: torch.ones(3, requires_grad=True) * 2):
        x = make()
        dist.all_reduce(x)
        seen.append((x.grad_fn, x._version, x))
        x = make()
        dist.broadcast(x, 0)
        seen.append((x.grad_fn, x._version, x))
        for collective in (dist.all_gather_into_tensor, dist.reduce_scatter_tensor):
            x = make()
            if collective is dist.all_gather_into_tensor and x.requires_grad:
                # Plain PyTorch raises an autograd view error here ("A view was created in no_grad
                # mode and is being modified inplace...") or not, depending on which collectives ran
                # before in the process; with torch_fwdad the call completes. Not comparable.
                continue
            out = torch.zeros(3)
            collective(out, x)
            seen.append((out.grad_fn, out._version, out))
        y = fc.broadcast(make(), 0, group) * 1
        seen.append((y.grad_fn, y._version, y))
    return [(type(node).__name__, version, t.requires_grad, t.tolist()) for node, version, t in seen]


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_c10d_calls_without_tangents_are_upstreams(one_rank_group):
    # Our kernels call the kernels beneath Autograd through the dispatcher (which releases
    # the GIL); where an input requires grad, upstream's autograd fallback still runs.
    ours = _c10d_calls_without_tangents(one_rank_group)
    with plain_pytorch():
        upstream = _c10d_calls_without_tangents(one_rank_group)
    assert ours == upstream
    # calls on inputs that require grad (upstream's autograd fallback) are compared too
    assert ("MulBackward0", 0, True, [2.0] * 3) in upstream


def test_disable_and_enable_switch_the_collective_rules(one_rank_group):
    x, t = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)

    def tangent():
        return torch.func.jvp(lambda v: fc.all_reduce(v, "sum", one_rank_group) * 1, (x,), (t,))[1]

    torch.testing.assert_close(tangent(), t)
    with plain_pytorch():
        assert torch.equal(tangent(), torch.zeros_like(t))  # upstream's silent zero: the rule is off
    torch.testing.assert_close(tangent(), t)


def test_all_reduce_refuses_a_bitwise_reduction_before_any_collective(one_rank_group):
    # Through the op, the primal's collective runs first and fails on float input later, in
    # whichever collective next waits (a load-dependent error on a real group): test the rule.
    from torch_fwdad.distributed.collectives import all_reduce_tangent

    x = torch.ones(3, dtype=torch.float64)
    with pytest.raises(NotImplementedError, match=r"all_reduce with reduce_op='bxor'"):
        all_reduce_tangent(x, x, "bxor", one_rank_group.group_name)


def test_import_loads_neither_functional_collectives_nor_dtensor():
    code = ("import sys, torch_fwdad; "
            "print(any(m in sys.modules for m in ('torch.distributed._functional_collectives', 'torch.distributed.tensor')))")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.slow
def test_benchmark_runs():
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, os.path.join("benchmarks", "bench_distributed.py"), "--batch", "8", "--width", "16", "--runs", "3"],
                          capture_output=True, text=True, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "jvp/primal" in done.stdout and "tangent's share" in done.stdout, done.stdout
