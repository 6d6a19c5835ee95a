"""The one table of expected failures, each with the reason it cannot pass.

KNOWN_FAILURES: (entry, check) -> reason, for every sample of the entry.
SAMPLE_FAILURES: (entry, sample description pattern (fnmatch), check) -> reason, for the
samples it names (a tie, a zero distance: points where the function is not smooth).

tests/ mark these xfail(strict=True), so a case that starts passing is reported, and
the coverage report reads the same table; `expected_failure` is the one lookup.
"""

from fnmatch import fnmatchcase

KNOWN_FAILURES: dict[tuple[str, str], str] = {}
SAMPLE_FAILURES: dict[tuple[str, str, str], str] = {}


def expected_failure(entry: str, sample_desc: str, check: str) -> str | None:
    """Why `check` cannot pass on this sample of `entry`, or None when it must pass."""
    reason = KNOWN_FAILURES.get((entry, check))
    if reason is not None:
        return reason
    for (name, pattern, failing), reason in SAMPLE_FAILURES.items():
        if name == entry and failing == check and fnmatchcase(sample_desc, pattern):
            return reason
    return None


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
for _op in ("aten::_embedding_bag_dense_backward", "aten::_embedding_bag_backward"):
    for _check in ("jvp_vjp", "unchanged"):
        KNOWN_FAILURES[(_op, _check)] = _NO_REVERSE_MODE.format(op=_op).replace(
            "tests/test_backward_ops.py", "tests/test_second_order_vision.py, with Hessians against finite differences")
for _check in ("jvp_vjp", "unchanged"):
    KNOWN_FAILURES[("aten::_embedding_bag_per_sample_weights_backward", _check)] = (
        "PyTorch has no backward formula for _embedding_bag_per_sample_weights_backward (it is not in "
        "its derivatives table), so reverse mode through it raises: there is no VJP to compare the JVP "
        "with and no reverse gradient to compare bitwise (Hessians through per_sample_weights are "
        "checked against finite differences in tests/test_second_order_vision.py)")
# -- end attention, vision and embeddings --


# -- samples at points where the function is not smooth, and samples upstream's backward rejects --
_KINK = "the tangent is discontinuous at {what}, so finite differences of it cannot match forward-over-forward"
for _entry in ("aten::_cdist_forward", "aten::_pdist_forward"):
    SAMPLE_FAILURES[(_entry, "zero distance p=*", "second_order")] = _KINK.format(what="a zero distance (a kink of the norm)")
SAMPLE_FAILURES[("aten::_cdist_forward", "zero coordinate p=0.5", "second_order")] = \
    _KINK.format(what="a zero coordinate difference when p < 1")
SAMPLE_FAILURES[("aten::_cdist_forward", "tie p=inf", "gradcheck")] = (
    "upstream's backward gives every coordinate tied for the max its full sign (no split); the "
    "JVP follows it so JVP and VJP agree, while finite differences see half")
SAMPLE_FAILURES[("aten::_cdist_forward", "tie p=inf", "second_order")] = _KINK.format(what="a tie of the max")
for _entry, _pattern in (("aten::index_reduce", "am?? tie*"), ("aten::scatter_reduce.two", "amax ties")):
    SAMPLE_FAILURES[(_entry, _pattern, "second_order")] = _KINK.format(what="a tie of the max/min")
for _check in ("jvp_vjp", "unchanged"):
    SAMPLE_FAILURES[("aten::scatter_reduce.two", "*src larger than index", _check)] = (
        "upstream's scatter_reduce backward rejects a src larger than index (invalid gradient "
        "shape); forward mode handles it")
for _check in ("gradcheck", "second_order"):
    SAMPLE_FAILURES[("aten::_embedding_bag", "max ties", _check)] = \
        "finite differences straddle the tie; the tangent follows max_indices, as the backward does"
    SAMPLE_FAILURES[("aten::_embedding_bag_forward_only", "max ties", _check)] = \
        SAMPLE_FAILURES[("aten::_embedding_bag", "max ties", _check)]
SAMPLE_FAILURES[("aten::_scaled_dot_product_flash_attention_for_cpu", "* (output and logsumexp)", "jvp_vjp")] = (
    "PyTorch's backward treats logsumexp as non-differentiable and ignores its cotangent, while "
    "torch_fwdad gives it its true tangent (checked by gradcheck here; the '(output)' samples "
    "check the output alone against the backward)")
for _check in ("jvp_vjp", "unchanged"):
    SAMPLE_FAILURES[("aten::_masked_softmax", "* (type [01])", _check)] = (
        "PyTorch's _masked_softmax_backward raises 'Mask shape should match grad shape' for the "
        "L x L and B x L mask types: reverse mode does not exist upstream")
SAMPLE_FAILURES[("aten::rrelu_with_noise_functional", "training*", "jvp_vjp")] = (
    "PyTorch's backward for rrelu_with_noise_functional reads the input noise, which this "
    "functional overload does not fill (noise_out holds the drawn slopes): its reverse-mode "
    "gradient in training is wrong, so the JVP (right, per finite differences) cannot match it")
for _entry in ("aten::_sparse_addmm", "aten::_sparse_mm_reduce_impl"):
    for _check in ("jvp_vjp", "partial", "second_order"):
        SAMPLE_FAILURES[(_entry, "* (csr)", _check)] = (
            "torch.func.jvp cannot see a sparse CSR tensor: functorch's wrapper reads the strides CSR "
            "lacks ('Sparse CSR tensors do not have strides'), in plain PyTorch too; "
            "tests/test_sparse_ops.py checks these kernels by gradcheck and reverse-over-forward")
# -- end samples --

# -- report-only samples of gaps torch covers upstream --
KNOWN_FAILURES[("aten::max_pool2d", "gradcheck")] = (
    "gradcheck's batched forward-grad check runs the legacy vmap, which has no batching rule "
    "for flatten.using_ints (inside max_pool2d's CPU decomposition); forward AD itself works"
)

# -- models: inference fast paths --
_FAST_PATH_NO_REVERSE = (
    "PyTorch has no reverse mode through the inference kernel {op} (nn modules take it only when "
    "nothing requires grad; autograd raises 'derivative ... is not implemented'): no VJP to compare "
    "with and no gradient to compare bitwise; tests/test_models_fast_paths.py compares the primal "
    "bitwise and the tangents with finite differences end to end"
)
for _op in ("aten::_native_multi_head_attention", "aten::_transformer_encoder_layer_fwd"):
    for _check in ("jvp_vjp", "unchanged"):
        KNOWN_FAILURES[(_op, _check)] = _FAST_PATH_NO_REVERSE.format(op=_op)
# -- end models --
