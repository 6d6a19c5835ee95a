"""Sparse ops under forward AD: the OpInfo entries of issue 3, and what PyTorch cannot represent.

PyTorch 2.13's forward AD cannot hold a tangent on a sparse tensor (tests below pin the
errors), so an op gets a JVP here only where every differentiable input and output is
strided: sparse @ dense products in the dense operand. docs/out_of_reach.md lists
the rest with reasons.
"""

import warnings

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import _VF

from torch_fwdad.testing.samples.sparse import sparse_matrix, to_csr
from torch_fwdad.testing import plain_pytorch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torch.testing._internal.common_methods_invocations import op_db

OPINFOS = {(op.name, op.variant_test_name): op for op in op_db}
SPARSE_LAYOUTS = ("coo", "csr")


def _opinfo_samples(name, variant=""):
    op = OPINFOS[(name, variant)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return op, list(op.sample_inputs("cpu", torch.float64, requires_grad=True))


def _forward_gradcheck(fn, inputs):
    return torch.autograd.gradcheck(
        fn, inputs, check_forward_ad=True, check_backward_ad=True,
        check_batched_forward_grad=True, check_undefined_grad=False,
    )


def _sparse(dense, layout):
    return dense.to_sparse() if layout == "coo" else to_csr(dense)


# ---------------------------------------------------------------- sparse.mm (reduce)

def _sparse_mm_reduce_cases():
    op, samples = _opinfo_samples("sparse.mm", "reduce")
    for index, sample in enumerate(samples):
        yield pytest.param(op, sample, id=f"{index}-{sample.args[1]}")


@pytest.mark.parametrize("op, sample", list(_sparse_mm_reduce_cases()))
def test_opinfo_sparse_mm_reduce_forward_ad(op, sample):
    """OpInfo sparse.mm (reduce): JVP in the dense operand vs finite differences and reverse mode.

    The sparse CSR operand is a constant: PyTorch cannot make it dual (see
    test_pytorch_cannot_make_sparse_tensors_dual), though the OpInfo sample asks for its
    gradient too; its reverse-mode gradient is unchanged (PyTorch's own backward).
    """
    self, (other, reduce) = sample.input.detach(), sample.args

    def fn(other):
        return sample.output_process_fn_grad(op(self, other, reduce))

    assert _forward_gradcheck(fn, (other.detach().clone().requires_grad_(),))


def test_opinfo_sparse_mm_reduce_fails_without_torch_fwdad():
    op, samples = _opinfo_samples("sparse.mm", "reduce")
    sample = samples[0]
    with plain_pytorch():
        with fwAD.dual_level(), pytest.raises(NotImplementedError, match="_sparse_mm_reduce_impl"):
            op(sample.input.detach(), fwAD.make_dual(sample.args[0].detach(), torch.ones_like(sample.args[0])), sample.args[1])


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
def test_sparse_mm_reduce_rule_is_differentiable_in_the_tangent(reduce):
    """Reverse-over-forward stands in for the torch.func checks a CSR tensor cannot enter.

    d<J(v), u>/dv through the rule must be Jᵀu from PyTorch's backward: the rule is
    differentiable (vmap over tangents, higher order) and consistent with reverse mode.
    """
    self = to_csr(sparse_matrix(5, 4, dtype=torch.float64, device="cpu", empty_row=3))
    other = torch.randn(4, 3, dtype=torch.float64)
    v = torch.randn_like(other, requires_grad=True)
    u = torch.randn(5, 3, dtype=torch.float64)
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(torch.sparse.mm(self, fwAD.make_dual(other, v), reduce)).tangent
    (through_rule,) = torch.autograd.grad(tangent, v, u)
    leaf = other.clone().requires_grad_()
    (reverse,) = torch.autograd.grad(torch.sparse.mm(self, leaf, reduce), leaf, u)
    torch.testing.assert_close(through_rule, reverse)


# ---------------------------------------------------------------- sparse @ dense (_sparse_addmm)

@pytest.mark.parametrize("layout", SPARSE_LAYOUTS)
def test_sparse_mm_and_addmm_forward_ad(layout):
    """torch.sparse.mm / torch.sparse.addmm reach _sparse_addmm, which PyTorch has no JVP for."""
    mat1 = _sparse(sparse_matrix(4, 5, dtype=torch.float64, device="cpu", empty_row=1), layout)
    mat2 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert _forward_gradcheck(lambda m: torch.sparse.mm(mat1, m), (mat2,))
    assert _forward_gradcheck(lambda b, m: torch.sparse.addmm(b, mat1, m, beta=0.5, alpha=2.0), (bias, mat2))


def test_graph_convolution_jacfwd_matches_reverse_mode():
    """End to end: a GCN layer relu(Â X W) with a sparse COO adjacency, Jacobian in W.

    Against a row-by-row reverse-mode Jacobian: jacrev itself fails here upstream (its
    vmap over the backward expands a sparse gradient: "expand is unsupported for Sparse").
    """
    adjacency = sparse_matrix(6, 6, dtype=torch.float64, device="cpu").to_sparse()
    features = torch.randn(6, 4, dtype=torch.float64)

    def layer(weight):
        return torch.relu(torch.sparse.mm(adjacency, features @ weight))

    weight = torch.randn(4, 3, dtype=torch.float64)
    reverse = torch.autograd.functional.jacobian(layer, weight, vectorize=False)
    torch.testing.assert_close(torch.func.jacfwd(layer)(weight), reverse)


# ---------------------------------------------------------------- out of reach: pinned

@pytest.mark.parametrize("layout", SPARSE_LAYOUTS)
def test_pytorch_cannot_make_sparse_tensors_dual(layout):
    """Why to_sparse, sampled_addmm, sparse_mask, _to_dense... get no formula (docs/out_of_reach.md).

    _make_dual aliases the primal and set_fw_grad compares storages; sparse layouts have
    neither storage nor strides. If a future torch accepts this, those rows become
    reachable and this test says so.
    """
    primal = _sparse(sparse_matrix(3, 4, dtype=torch.float64, device="cpu"), layout)
    with fwAD.dual_level(), pytest.raises((NotImplementedError, RuntimeError), match="storage|strides"):
        _VF._make_dual(primal, primal.clone(), 0)


def test_opinfo_to_sparse_stays_out_of_reach():
    """to_sparse (then to_dense, as the OpInfo sample does): the sparse intermediate would
    have to carry the tangent, which PyTorch cannot store; the error stays upstream's."""
    op, samples = _opinfo_samples("to_sparse")
    sample = samples[0]
    with fwAD.dual_level(), pytest.raises(NotImplementedError, match="_to_sparse"):
        op(fwAD.make_dual(sample.input.detach(), torch.ones_like(sample.input)), *sample.args)


def test_opinfo_sampled_addmm_stays_out_of_reach():
    """sparse.sampled_addmm: the output is sparse CSR, which cannot hold a tangent, and its
    sparse input cannot be made dual; the error stays upstream's."""
    op, samples = _opinfo_samples("sparse.sampled_addmm")
    sample = next(s for s in samples if s.input.numel() > 0)
    mat1, mat2 = (a.detach() for a in sample.args)
    with fwAD.dual_level(), pytest.raises(NotImplementedError, match="sparse_sampled_addmm"):
        op(sample.input.detach(), fwAD.make_dual(mat1, torch.ones_like(mat1)), mat2, **sample.kwargs)
