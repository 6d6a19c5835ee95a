"""F.linear_cross_entropy's chunked custom ops: forward mode through torch_fwdad's rules."""

import pytest
import torch
from torch.testing._internal.common_methods_invocations import op_db

import torch_fwdad

VARIANTS = {op.variant_test_name: op for op in op_db if op.name == "nn.functional.linear_cross_entropy"}
pytestmark = pytest.mark.skipif("chunked" not in VARIANTS, reason="this torch has no chunked linear_cross_entropy")


def test_rules_are_registered_for_both_custom_ops():
    names = {rule.name for rule in torch_fwdad.registered_ops()}
    assert {"torch_nn::_linear_cross_entropy_batch_chunked",
            "torch_nn::_linear_cross_entropy_batch_chunked_no_reduction"} <= names


def _differentiable(op, sample):
    """(fn, inputs): the op as a function of its floating tensors (input, weight, bias)."""
    positional = [sample.input, *sample.args]
    spots = [("arg", k) for k, a in enumerate(positional) if torch.is_tensor(a) and a.is_floating_point()]
    if torch.is_tensor(sample.kwargs.get("linear_bias")):
        spots.append(("kw", "linear_bias"))

    def fn(*xs):
        args, kwargs = list(positional), dict(sample.kwargs)
        for (kind, key), x in zip(spots, xs):
            if kind == "arg":
                args[key] = x
            else:
                kwargs[key] = x
        return op.op(*args, **kwargs)

    inputs = [(positional[key] if kind == "arg" else sample.kwargs[key]).detach().clone().requires_grad_() for kind, key in spots]
    return fn, inputs


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("variant", ["chunked", "chunked_none"])
def test_opinfo_samples_match_finite_differences(variant):
    samples = list(VARIANTS[variant].sample_inputs("cpu", torch.float64, requires_grad=False))
    for sample in samples[::3]:  # every third: all option combinations appear, runtime stays small
        fn, inputs = _differentiable(VARIANTS[variant], sample)
        # batched forward grad off: gradcheck's legacy vmap fails inside F.linear_cross_entropy's
        # own Python (squeeze of an unbatched result), before any rule runs -- to investigate
        assert torch.autograd.gradcheck(fn, inputs, check_forward_ad=True, check_backward_ad=False,
                                        check_batched_forward_grad=False, fast_mode=True)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("variant", ["chunked", "chunked_none"])
def test_forward_over_reverse_raises_instead_of_a_wrong_hessian(variant):
    # The op's backward multiplies gradients precomputed (and detached) at forward time,
    # so a Hessian-vector product through it cannot be right: it must fail loudly.
    sample = next(iter(VARIANTS[variant].sample_inputs("cpu", torch.float64, requires_grad=False)))
    fn, inputs = _differentiable(VARIANTS[variant], sample)
    with torch.autograd.forward_ad.dual_level():
        duals = [torch.autograd.forward_ad.make_dual(x.detach(), torch.randn_like(x)).requires_grad_() for x in inputs]
        loss = fn(*duals).sum()
        with pytest.raises(RuntimeError, match="torch_fwdad: forward-mode AD over the backward of torch_nn._linear_cross_entropy"):
            torch.autograd.grad(loss, duals, create_graph=True)
