"""Cases run on every rank of a real gloo group by tests/test_distributed.py (not collected:
no test_ functions). Each compares against the same math in one process: the ranks' inputs
and tangents are gathered, stacked, and differentiated with torch.func.jvp locally."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.distributed as dist
import torch.distributed._functional_collectives as fc

import torch_fwdad
import torch_fwdad.distributed
from torch_fwdad.testing import plain_pytorch

torch_fwdad.distributed.install()

DTYPE = torch.float64


def inputs(rank, shape, seed=0):
    """This rank's (x, t) and every rank's, stacked: what the one-process reference sees."""
    generator = torch.Generator().manual_seed(1000 * seed + rank)
    x, t = torch.randn(shape, dtype=DTYPE, generator=generator), torch.randn(shape, dtype=DTYPE, generator=generator)
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, (x, t))
    return x, t, torch.stack([a for a, _ in everyone]), torch.stack([b for _, b in everyone])


def jvp_by(api, f, x, t):
    """(primal, tangent) of f at x along t; `* 1` reads any in-flight output through dispatch."""
    if api == "torch.func.jvp":
        return torch.func.jvp(lambda v: f(v) * 1, (x,), (t,))
    with fwAD.dual_level():
        return tuple(fwAD.unpack_dual(f(fwAD.make_dual(x, t)) * 1))


def check(name, f, reference, x, t, xs, ts, apis=("torch.func.jvp", "forward_ad")):
    expected_y, expected_t = torch.func.jvp(reference, (xs,), (ts,))
    for api in apis:
        y, tangent = jvp_by(api, f, x, t)
        assert tangent is not None, f"{name} under {api}: no tangent"
        torch.testing.assert_close(y, expected_y, msg=f"{name} under {api}: primal")
        torch.testing.assert_close(tangent, expected_t, msg=f"{name} under {api}: tangent")


def group():
    return dist.group.WORLD


def case_all_reduce(rank, world):
    x, t, xs, ts = inputs(rank, (4, 6))
    check("sum", lambda v: fc.all_reduce(v, "sum", group()), lambda v: v.sum(0), x, t, xs, ts)
    check("avg", lambda v: fc.all_reduce(v, "avg", group()), lambda v: v.mean(0), x, t, xs, ts)
    check("max", lambda v: fc.all_reduce(v, "max", group()), lambda v: v.amax(0), x, t, xs, ts)
    check("min", lambda v: fc.all_reduce(v, "min", group()), lambda v: v.amin(0), x, t, xs, ts)
    check("product", lambda v: fc.all_reduce(v, "product", group()), lambda v: v.prod(0), x, t, xs, ts)


def case_all_reduce_ties_and_zeros(rank, world):
    # max ties: every rank holds the same values (amax shares the tangent evenly); product: zeros.
    _, t, _, ts = inputs(rank, (5,))
    x = torch.tensor([1.0, -2.0, 0.0, 3.0, 0.5], dtype=DTYPE)
    if rank == 0:
        x[3] = 0.0  # a zero on one rank only; index 2 is zero everywhere
    everyone = [None] * world
    dist.all_gather_object(everyone, x)
    xs = torch.stack(everyone)
    check("max with ties", lambda v: fc.all_reduce(v, "max", group()), lambda v: v.amax(0), x, t, xs, ts)
    check("product with zeros", lambda v: fc.all_reduce(v, "product", group()), lambda v: v.prod(0), x, t, xs, ts)


def case_all_gather_every_dim(rank, world):
    x, t, xs, ts = inputs(rank, (2, 3, 4))
    for dim in range(3):
        check(f"all_gather_tensor gather_dim={dim}", lambda v: fc.all_gather_tensor(v, dim, group()),
              lambda v: torch.cat(list(v), dim), x, t, xs, ts)


def case_reduce_scatter(rank, world):
    x, t, xs, ts = inputs(rank, (2 * world, 3))
    for op, reduce in (("sum", lambda v: v.sum(0)), ("avg", lambda v: v.mean(0)), ("max", lambda v: v.amax(0)),
                       ("product", lambda v: v.prod(0))):
        check(f"reduce_scatter_tensor {op}", lambda v: fc.reduce_scatter_tensor(v, op, 0, group()),
              lambda v: reduce(v).chunk(world)[rank], x, t, xs, ts)
    check("reduce_scatter_tensor scatter_dim=1", lambda v: fc.reduce_scatter_tensor(v.T.contiguous(), "sum", 1, group()),
          lambda v: v.sum(0).T.chunk(world, 1)[rank], x, t, xs, ts)


def case_all_to_all_and_broadcast(rank, world):
    x, t, xs, ts = inputs(rank, (world, 3))
    check("all_to_all_single", lambda v: fc.all_to_all_single(v, None, None, group()),
          lambda v: v[:, rank], x, t, xs, ts)
    src = world - 1
    check("broadcast", lambda v: fc.broadcast(v, src, group()), lambda v: v[src], x, t, xs, ts)


def case_autograd_namespace_and_coalesced(rank, world):
    x, t, xs, ts = inputs(rank, (world, 3))
    name = group().group_name
    ops = torch.ops._c10d_functional_autograd
    wait = torch.ops._c10d_functional.wait_tensor
    check("_c10d_functional_autograd::all_gather_into_tensor", lambda v: wait(ops.all_gather_into_tensor(v, world, name)),
          lambda v: v.reshape(world * world, 3), x, t, xs, ts)
    check("_c10d_functional_autograd::reduce_scatter_tensor", lambda v: wait(ops.reduce_scatter_tensor(v, "sum", world, name)),
          lambda v: v.sum(0)[rank:rank + 1], x, t, xs, ts)
    check("_c10d_functional_autograd::all_to_all_single", lambda v: wait(ops.all_to_all_single(v, [1] * world, [1] * world, name)),
          lambda v: v[:, rank], x, t, xs, ts)
    check("all_reduce_coalesced", lambda v: fc.all_reduce_coalesced([v, 2 * v], "sum", group())[1],
          lambda v: 2 * v.sum(0), x, t, xs, ts)
    check("all_gather_into_tensor_coalesced", lambda v: fc.all_gather_into_tensor_coalesced([v, v.sin()], group())[1],
          lambda v: v.sin().reshape(world * world, 3), x, t, xs, ts)
    check("reduce_scatter_tensor_coalesced", lambda v: fc.reduce_scatter_tensor_coalesced([v, v.exp()], "sum", [0, 0], group())[1],
          lambda v: v.exp().sum(0)[rank:rank + 1], x, t, xs, ts)


def case_c10d_in_place(rank, world):
    x, t, xs, ts = inputs(rank, (world, 3))

    def in_place(op):
        def f(v):
            v = v.clone()
            op(v)
            return v
        return f

    def into_output(op, rows, *, async_op=False):
        def f(v):
            out = torch.empty(rows, *v.shape[1:], dtype=v.dtype)
            work = op(out, v, async_op=async_op)
            if async_op:
                work.wait()
                work.wait()  # gloo's reduce-scatter copies into the output again on each wait
            return out
        return f

    scatter = lambda v: v.sum(0)[rank:rank + 1]  # noqa: E731
    for name, f, reference in (
        ("dist.all_reduce", in_place(dist.all_reduce), lambda v: v.sum(0)),
        ("dist.broadcast", in_place(lambda v: dist.broadcast(v, 0)), lambda v: v[0]),
        ("dist.all_gather_into_tensor", into_output(dist.all_gather_into_tensor, world * world), lambda v: v.reshape(-1, 3)),
        ("dist.reduce_scatter_tensor", into_output(dist.reduce_scatter_tensor, 1), scatter),
        ("dist.reduce_scatter_tensor async_op", into_output(dist.reduce_scatter_tensor, 1, async_op=True), scatter),
    ):
        check(name, f, reference, x, t, xs, ts)
    avg_into_dual = lambda v: (lambda out: (dist.reduce_scatter_tensor(out, v, op=dist.ReduceOp.AVG), out)[1])(v[:1] * 0)  # noqa: E731
    check("dist.reduce_scatter_tensor AVG into a dual output", avg_into_dual, lambda v: v.mean(0)[rank:rank + 1], x, t, xs, ts)


def case_refusals_name_the_op(rank, world):
    import torch.distributed.nn.functional as dist_nn

    x, t, _, _ = inputs(rank, (3,))
    with fwAD.dual_level():
        with pytest.raises(NotImplementedError, match=r"allreduce_.*ReduceOp.MAX.*functional collectives"):
            dist.all_reduce(fwAD.make_dual(x.clone(), t), op=dist.ReduceOp.MAX)
        with pytest.raises(NotImplementedError, match=r"c10d.reduce_.*functional collectives"):
            dist.reduce(fwAD.make_dual(x.clone(), t), dst=0)
        with pytest.raises(NotImplementedError, match=r"_reduce_scatter_base_.*ReduceOp.MAX.*functional collectives"):
            dist.reduce_scatter_tensor(torch.empty(1, dtype=DTYPE), fwAD.make_dual(torch.ones(world, dtype=DTYPE), torch.ones(world, dtype=DTYPE)), op=dist.ReduceOp.MAX)
        with pytest.raises(NotImplementedError, match=r"must implement the jvp function"):
            dist_nn.all_reduce(fwAD.make_dual(x.clone(), t))  # PyTorch's own refusal: its Function has no jvp
        with pytest.raises(NotImplementedError, match=r"_reduce_scatter_base_.*without its tangent"):
            dist.reduce_scatter_tensor(fwAD.make_dual(torch.zeros(1, dtype=DTYPE), torch.ones(1, dtype=DTYPE)), torch.ones(world, dtype=DTYPE))


def case_reverse_mode_and_primal_bitwise_unchanged(rank, world):
    x, _, _, _ = inputs(rank, (2 * world, 3))

    def run():
        v = x.clone().requires_grad_()
        y = fc.all_reduce(v.sin(), "sum", group())  # an AsyncCollectiveTensor into all_gather
        y = fc.all_gather_tensor(y, 1, group()) * 2
        y = fc.reduce_scatter_tensor(y.exp(), "sum", 0, group())
        y.sum().backward()
        return y.detach(), v.grad

    with_rules = run()
    with plain_pytorch():
        without = run()
    assert torch.equal(with_rules[0], without[0]) and torch.equal(with_rules[1], without[1])


def case_disable_restores_upstream(rank, world):
    # Upstream (torch_fwdad disabled): torch.func.jvp through all_reduce returns a zero tangent.
    x, t, _, ts = inputs(rank, (3,))
    import torch.distributed.tensor as dtensor_package
    from torch.distributed.fsdp._fully_shard._fsdp_state import FSDPState
    from torch.distributed.tensor import _api

    refusing = (_api._FromTorchTensor.apply, dtensor_package.distribute_tensor, FSDPState._root_pre_forward)
    with plain_pytorch():
        _, upstream = torch.func.jvp(lambda v: fc.all_reduce(v, "sum", group()) * 1, (x,), (t,))
        assert "jvp" not in _api._FromTorchTensor.__dict__ and "apply" not in _api._FromTorchTensor.__dict__
        assert dtensor_package.distribute_tensor is _api.distribute_tensor and not hasattr(_api.distribute_tensor, "__wrapped__")
        assert refusing[2] is not FSDPState._root_pre_forward
        with pytest.raises(RuntimeError, match="must override the setup_context"):  # upstream's refusal
            torch.func.jvp(lambda v: _api.DTensor.from_local(v, _api.DeviceMesh("cpu", list(range(world)))).to_local(), (x,), (t,))
    assert refusing == (_api._FromTorchTensor.apply, dtensor_package.distribute_tensor, FSDPState._root_pre_forward)
    _, ours = torch.func.jvp(lambda v: fc.all_reduce(v, "sum", group()) * 1, (x,), (t,))
    assert torch.equal(upstream, torch.zeros_like(t)), "upstream behaviour changed: the test's premise is stale"
    torch.testing.assert_close(ours, ts.sum(0))


def case_dtensor_forward_ad(rank, world):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world,))
    x, t, xs, ts = inputs(rank, (2, 3))
    with fwAD.dual_level():
        local = fwAD.make_dual(x, t)
        sharded = DTensor.from_local(local, mesh, [Shard(0)])
        replicated = sharded.redistribute(mesh, [Replicate()])
        y, tangent = fwAD.unpack_dual(replicated.to_local())
    torch.testing.assert_close(y, xs.reshape(-1, 3))
    torch.testing.assert_close(tangent, ts.reshape(-1, 3))
    full_x, full_t = xs.reshape(-1, 3), ts.reshape(-1, 3)
    with fwAD.dual_level():
        dual = fwAD.make_dual(distribute_tensor(full_x, mesh, [Shard(0)]), distribute_tensor(full_t, mesh, [Shard(0)]))
        y, tangent = fwAD.unpack_dual(dual.sin().exp())
    expected_y, expected_t = torch.func.jvp(lambda v: v.sin().exp(), (full_x,), (full_t,))
    torch.testing.assert_close(y.full_tensor(), expected_y)
    torch.testing.assert_close(tangent.full_tensor(), expected_t)


def case_fails_on_rank_0_only(rank, world):
    if rank == 0:
        raise RuntimeError("deliberate failure on rank 0")


def _run_docs_example(marker, rank, world):
    import pathlib
    import re

    doc = (pathlib.Path(__file__).parents[1] / "docs" / "distributed.md").read_text()
    code = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", doc, re.S).group(1)
    exec(compile(code, "docs/distributed.md", "exec"), {"rank": rank, "world": world})


def case_docs_tensor_parallel_example(rank, world):
    """The worked example of docs/distributed.md, as written there (it asserts itself)."""
    _run_docs_example("tp-example", rank, world)


def case_docs_fsdp2_example(rank, world):
    _run_docs_example("fsdp-example", rank, world)


def case_tensor_parallel_without_a_weight_tangent_is_refused_not_zero(rank, world):
    """A DTensor weight without tangent makes forward AD materialise a plain zero tensor,
    which DTensor refuses to mix (measured; the reason the example gives every weight one)."""
    import torch.nn as nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    torch.manual_seed(0)
    block = parallelize_module(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4)).double(),
                               init_device_mesh("cpu", (world,)), {"0": ColwiseParallel(), "2": RowwiseParallel()})
    x = torch.randn(2, 4, dtype=DTYPE)
    with fwAD.dual_level(), pytest.raises(RuntimeError, match="got mixed torch.Tensor and DTensor"):
        block(fwAD.make_dual(x, torch.ones_like(x)))


def _fsdp_mlp(world):
    """A fully_shard MLP (each linear its own group) and the same MLP in one process."""
    import torch.nn as nn
    from torch.distributed.fsdp import fully_shard

    torch.manual_seed(0)  # the same weights on every rank
    reference = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    model.load_state_dict(reference.state_dict())
    for layer in (model[0], model[2], model):
        fully_shard(layer)
    return model, reference


def case_fsdp2_forward_ad_wrt_input_and_parameters(rank, world):
    from torch.distributed.tensor import distribute_tensor

    model, reference = _fsdp_mlp(world)
    x, t, _, _ = inputs(rank, (2, 4))  # each rank its own batch: FSDP is data parallel
    w_dot = {name: torch.randn_like(w) for name, w in reference.named_parameters()}  # same on every rank (seeded)
    for first_call in ("plain forward", "functional_call"):
        if first_call == "plain forward":
            expected = torch.func.jvp(reference, (x,), (t,))
            check("fsdp2 w.r.t. input", model, reference, x, t, x, t)
            continue
        expected = torch.func.jvp(lambda v, w: torch.func.functional_call(reference, w, (v,)),
                                  (x, dict(reference.named_parameters())), (t, w_dot))
        for repeat in range(2):  # a second forward in the same level must not reuse the first one's tangents
            with fwAD.dual_level():
                weights = {name: fwAD.make_dual(w.detach(), distribute_tensor(w_dot[name], w.device_mesh, w.placements))
                           for name, w in model.named_parameters()}
                y, y_dot = fwAD.unpack_dual(torch.func.functional_call(model, weights, (fwAD.make_dual(x, t),)))
                _, no_weight_tangent = fwAD.unpack_dual(model(fwAD.make_dual(x, t)))
            torch.testing.assert_close(y, expected[0])
            torch.testing.assert_close(y_dot, expected[1], msg=f"fsdp2 w.r.t. input and parameters, forward {repeat}")
            torch.testing.assert_close(no_weight_tangent, torch.func.jvp(reference, (x,), (t,))[1])


def case_fsdp2_refusals_and_reverse_mode(rank, world):
    model, reference = _fsdp_mlp(world)
    x, t, _, _ = inputs(rank, (2, 4))

    def gradients():
        model.zero_grad()
        model(x).square().sum().backward()
        return [w.grad.full_tensor() for w in model.parameters()]

    with_rules = gradients()
    full = {name: w.detach().full_tensor() for name, w in model.named_parameters()}
    with fwAD.dual_level(), pytest.raises(NotImplementedError, match=r"0.weight.*not the module's own sharded parameter"):
        torch.func.functional_call(model, {n: fwAD.make_dual(w.clone(), torch.ones_like(w)) for n, w in full.items()}, (x,))
    torch.testing.assert_close(model(x), reference(x))  # FSDP still runs after the refusals
    with plain_pytorch():
        upstream = gradients()
        with fwAD.dual_level(), pytest.raises(RuntimeError, match="jvp is not returning a view"):
            model(fwAD.make_dual(x, t))  # upstream's failure: the premise of the patch (leaves FSDP unsharded)
    assert all(torch.equal(a, b) for a, b in zip(with_rules, upstream))


def _same_refusal_on_every_rank(name, run, match):
    """`run` raises NotImplementedError matching `match`, with the same message on every rank."""
    with pytest.raises(NotImplementedError, match=match) as refusal:
        run()
    messages = [None] * dist.get_world_size()
    dist.all_gather_object(messages, str(refusal.value))
    assert len(set(messages)) == 1, f"{name}: ranks refused differently: {messages}"


def case_torch_func_through_dtensor_refused_alike_on_every_rank(rank, world):
    """Under torch.func, DTensor code sees plain torch.Tensor wrappers: tensor parallel,
    distribute_tensor and FSDP2 parameters raise one clear error on every rank, before any
    collective (upstream: some ranks failed, in different places, and the rest waited until
    the group's timeout). Elementwise DTensor ops that need no DTensor method stay exact."""
    import torch.nn as nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    refused = r"is not supported under torch.func transforms.*use torch.autograd.forward_ad"
    mesh = init_device_mesh("cpu", (world,))
    torch.manual_seed(0)
    block = parallelize_module(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4)).double(), mesh,
                               {"0": ColwiseParallel(), "2": RowwiseParallel()})
    x, t, xs, ts = inputs(rank, (2, 4))
    _same_refusal_on_every_rank("tensor parallel w.r.t. input", lambda: torch.func.jvp(block, (x,), (t,)),
                                "DTensor.from_local " + refused)
    with pytest.raises(RuntimeError, match="must override the setup_context"):  # torch.func.grad: upstream's error, unchanged
        torch.func.grad(lambda v: block(v).sum())(x)
    weights = {name: w.detach() for name, w in block.named_parameters()}
    w_dot = {name: torch.ones_like(w) for name, w in weights.items()}
    _same_refusal_on_every_rank(
        "tensor parallel w.r.t. weights",
        lambda: torch.func.jvp(lambda w: torch.func.functional_call(block, w, (x,)), (weights,), (w_dot,)),
        "DTensor.from_local " + refused)
    _same_refusal_on_every_rank(
        "distribute_tensor", lambda: torch.func.jvp(lambda v: distribute_tensor(v, mesh, [Shard(0)]), (x,), (t,)),
        "distribute_tensor " + refused)
    model, _ = _fsdp_mlp(world)
    params = {name: w.detach() for name, w in model.named_parameters()}
    p_dot = {name: torch.ones_like(w) for name, w in params.items()}
    for when in ("before FSDP's first forward", "after it"):
        _same_refusal_on_every_rank(
            f"FSDP2 parameters {when}",
            lambda: torch.func.jvp(lambda w: torch.func.functional_call(model, w, (x,)), (params,), (p_dot,)),
            r"FSDP2 parameter 0.weight under torch.func is not supported")
        model(x)
    full_x, full_t = xs.reshape(-1, 4), ts.reshape(-1, 4)
    y, y_dot = torch.func.jvp(lambda v: v.sin(), (distribute_tensor(full_x, mesh, [Shard(0)]),),
                              (distribute_tensor(full_t, mesh, [Shard(0)]),))
    torch.testing.assert_close(y_dot.full_tensor(), full_t * full_x.cos())
    _, s_dot = torch.func.jvp(lambda v: (v * v).sum(), (distribute_tensor(full_x, mesh, [Shard(0)]),),
                              (distribute_tensor(full_t, mesh, [Shard(0)]),))
    torch.testing.assert_close(s_dot.full_tensor(), 2 * (full_x * full_t).sum())


def case_dtensor_tangent_in_other_storage(rank, world):
    """A tangent whose local storage differs from its primal's makes forward AD call
    _new_zeros_with_same_feature_meta (rank-dependent in real use: FSDP's padded shards);
    the strategy registered for it lays the zeros out like the primal."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard

    mesh = init_device_mesh("cpu", (world,))
    x, t, xs, ts = inputs(rank, (2, 3))
    padded = torch.cat([x, torch.zeros(1, 3, dtype=DTYPE)])[:2]  # a view into a larger storage
    primal = DTensor.from_local(padded, mesh, [Shard(0)])
    tangent = DTensor.from_local(t.clone(), mesh, [Shard(0)])
    assert not torch.ops.aten._has_same_storage_numel(padded, tangent._local_tensor)  # the premise: forward AD must copy
    with fwAD.dual_level():
        y, y_dot = fwAD.unpack_dual(fwAD.make_dual(primal, tangent).exp())
    torch.testing.assert_close(y_dot.full_tensor(), ts.reshape(-1, 3) * xs.reshape(-1, 3).exp())
    with plain_pytorch(), pytest.raises(NotImplementedError, match="_new_zeros_with_same_feature_meta.*sharding strategy"):
        torch.ops.aten._new_zeros_with_same_feature_meta(tangent, primal)
