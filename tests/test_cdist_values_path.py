"""cdist p=2 tangents computed in place (no outer derivative can see the rule) against
the differentiable path taken when reverse mode watches the inputs: identical values,
zero at a zero distance, for both kernels cdist dispatches to."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD

import torch_fwdad  # noqa: F401


def _tangent(x1, x2, t1, t2, compute_mode, watched):
    if watched:  # reverse mode watching: the rule keeps every op differentiable
        x1, x2 = x1.detach().requires_grad_(), x2.detach().requires_grad_()
    with fwAD.dual_level():
        out = torch.cdist(fwAD.make_dual(x1, t1), fwAD.make_dual(x2, t2), compute_mode=compute_mode)
        return fwAD.unpack_dual(out).tangent.detach()


@pytest.mark.parametrize("compute_mode", ["use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_only_path_matches_differentiable_path(compute_mode, dtype):
    g = torch.Generator().manual_seed(0)
    x1, x2, t1, t2 = (torch.randn(30, 5, generator=g, dtype=dtype) for _ in range(4))
    x2[3] = x1[7]  # one zero distance
    fast = _tangent(x1, x2, t1, t2, compute_mode, watched=False)
    reference = _tangent(x1, x2, t1, t2, compute_mode, watched=True)
    torch.testing.assert_close(fast, reference, rtol=0, atol=0)
    if compute_mode == "donot_use_mm_for_euclid_dist":  # (the mm kernel clamps: no exact zero)
        assert torch.cdist(x1, x2, compute_mode=compute_mode)[7, 3] == 0 and fast[7, 3] == 0


def test_traced_values_path_keeps_the_zero_distance_mask():
    # make_fx with real tensors runs the rule once: the traced program must still zero the
    # tangent where a later input has a zero distance (no data-dependent shortcut baked in)
    from torch.fx.experimental.proxy_tensor import make_fx

    def tangent(x1, x2, t1, t2):
        with fwAD.dual_level():
            out = torch.cdist(fwAD.make_dual(x1, t1), fwAD.make_dual(x2, t2), compute_mode="donot_use_mm_for_euclid_dist")
            return fwAD.unpack_dual(out).tangent

    g = torch.Generator().manual_seed(1)
    x1, x2, t1, t2 = (torch.randn(30, 5, generator=g, dtype=torch.float64) for _ in range(4))
    traced = make_fx(tangent)(x1, x2, t1, t2)  # traced on inputs without a zero distance
    x2[3] = x1[7]
    result = traced(x1, x2, t1, t2)
    assert result[7, 3] == 0
    torch.testing.assert_close(result, tangent(x1, x2, t1, t2), rtol=0, atol=0)
