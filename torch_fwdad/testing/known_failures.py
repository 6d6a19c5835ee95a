"""The one table of expected failures: (entry, check) -> the reason it cannot pass.

tests/ mark these xfail(strict=True), so an entry that starts passing is reported.
"""

KNOWN_FAILURES: dict[tuple[str, str], str] = {}

# -- group B: ctc, segment, quantisation, conv, rnn, sparse --
_CTC_SECOND_ORDER = (
    "the tangent is built from PyTorch's _ctc_loss_backward, which has no derivative of its "
    "own (forward or reverse): a second derivative of CTC needs a differentiable alpha-beta "
    "recursion, which PyTorch does not provide (its OpInfo xfails test_fn_gradgrad likewise)"
)
KNOWN_FAILURES[("aten::_ctc_loss", "second_order")] = _CTC_SECOND_ORDER
KNOWN_FAILURES[("aten::_ctc_loss.Tensor", "second_order")] = _CTC_SECOND_ORDER
_STRAIGHT_THROUGH = (
    "straight-through estimator: like PyTorch's backward formula, the tangent treats rounding "
    "as the identity, while finite differences see the piecewise-constant primal (zero slope)"
)
for _op in ("aten::fake_quantize_per_tensor_affine_cachemask",
            "aten::_fake_quantize_per_tensor_affine_cachemask_tensor_qparams",
            "aten::fake_quantize_per_channel_affine_cachemask"):
    KNOWN_FAILURES[(_op, "gradcheck")] = _STRAIGHT_THROUGH
# -- end group B --

# -- backward ops, special functions, linear algebra --
_NO_REVERSE_MODE = (
    "PyTorch's backward formula for {op} is not_implemented, so reverse mode through it raises: "
    "there is no VJP to compare the JVP with and no reverse gradient to compare bitwise "
    "(the primal is compared in tests/test_backward_ops.py)"
)
for _op in ("aten::_cdist_backward", "aten::_pdist_backward"):
    for _check in ("jvp_vjp", "unchanged"):
        KNOWN_FAILURES[(_op, _check)] = _NO_REVERSE_MODE.format(op=_op)
_STANDARD_GAMMA = (
    "the tangent is PyTorch's implicit reparameterisation gradient (dx/dα holding the CDF at x "
    "fixed), not the derivative of the sampler's path for a fixed random stream that finite "
    "differences see (GUIDE §7: finite differences cannot judge random ops); and "
    "_standard_gamma_grad, which the tangent is built from, has no derivative in PyTorch "
    "(not_implemented), so neither the batched-forward part of gradcheck nor second order can run"
)
for _check in ("gradcheck", "second_order"):
    KNOWN_FAILURES[("aten::_standard_gamma", _check)] = _STANDARD_GAMMA
# -- end backward ops, special functions, linear algebra --

# -- attention, vision and embeddings --
KNOWN_FAILURES[("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "jvp_vjp")] = \
    _NO_REVERSE_MODE.format(op="aten::_scaled_dot_product_flash_attention_for_cpu_backward").replace(
        "tests/test_backward_ops.py", "tests/test_attention.py, with Hessian-vector products against the MATH backend")
KNOWN_FAILURES[("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "unchanged")] = \
    KNOWN_FAILURES[("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "jvp_vjp")]
_FORWARD_ONLY = (
    "PyTorch's _embedding_bag_forward_only refuses inputs that require grad ('Autograd not "
    "support dtype: Long'), so checks that need reverse mode cannot call it; its tangents are "
    "checked by partial and second_order here and against _embedding_bag in tests/test_vision_embedding.py"
)
for _check in ("gradcheck", "jvp_vjp", "unchanged"):
    KNOWN_FAILURES[("aten::_embedding_bag_forward_only", _check)] = _FORWARD_ONLY
# -- end attention, vision and embeddings --
