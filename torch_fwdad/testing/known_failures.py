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
for _op in ("aten::_cdist_backward", "aten::_pdist_backward", "aten::multi_margin_loss_backward",
            "aten::multilabel_margin_loss_backward", "aten::_segment_reduce_backward",
            "aten::hardsigmoid_backward", "aten::_ctc_loss_backward", "aten::_ctc_loss_backward.Tensor"):
    for _check in ("jvp_vjp", "unchanged"):
        KNOWN_FAILURES[(_op, _check)] = _NO_REVERSE_MODE.format(op=_op)
_STANDARD_GAMMA = (
    "the tangent is PyTorch's implicit reparameterisation gradient (dx/dα holding the CDF at x "
    "fixed), not the derivative of the sampler's path for a fixed random stream that finite "
    "differences see (finite differences cannot judge random ops); and "
    "_standard_gamma_grad, which the tangent is built from, has no derivative in PyTorch "
    "(not_implemented), so neither the batched-forward part of gradcheck nor second order can run"
)
for _check in ("gradcheck", "second_order"):
    KNOWN_FAILURES[("aten::_standard_gamma", _check)] = _STANDARD_GAMMA
# For the forward-over-reverse and vmap checks of the fwdrev branch (inert until it is merged):
# a backward op without reverse mode has no VJP to differentiate (third order).
for _op in ("aten::multi_margin_loss_backward", "aten::multilabel_margin_loss_backward",
            "aten::_segment_reduce_backward", "aten::hardsigmoid_backward",
            "aten::_ctc_loss_backward", "aten::_ctc_loss_backward.Tensor"):
    for _check in ("fwd_over_rev_func", "fwd_over_rev_forward_ad"):
        KNOWN_FAILURES[(_op, _check)] = (
            f"{_op} has no reverse mode in PyTorch (not in its derivatives table): there is no VJP of it "
            "to differentiate (that would be third order of the original op)")
SAMPLE_FAILURES[("aten::_cdist_backward", "empty broadcast batch (3, 5) (0, 4, 5)*", "vmap_jvp")] = (
    "vmap of PyTorch's _cdist_backward primal over this empty broadcast batch returns shape "
    "(B, 1, 3, 5) where a loop gives (3, 5), measured with torch_fwdad disabled (the check "
    "compares the primal output first, before any tangent)")
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

# -- second order (forward-over-reverse) and vmap over the JVP --
_FWD_OVER_REV = ("fwd_over_rev_func", "fwd_over_rev_forward_ad")
_THIRD_ORDER = (
    "{op} is itself a backward op whose own backward is not_implemented in PyTorch: there is no "
    "VJP of it to differentiate (that would be third order of the original op)")
for _op in ("aten::_cdist_backward", "aten::_pdist_backward", "aten::_embedding_bag_backward",
            "aten::_embedding_bag_dense_backward", "aten::_embedding_bag_per_sample_weights_backward",
            "aten::_scaled_dot_product_flash_attention_for_cpu_backward"):
    for _check in _FWD_OVER_REV:
        KNOWN_FAILURES[(_op, _check)] = _THIRD_ORDER.format(op=_op)
for _check in _FWD_OVER_REV:
    KNOWN_FAILURES[("aten::_masked_softmax", _check)] = (
        "PyTorch's _masked_softmax_backward has no forward formula and torch_fwdad no rule for it yet "
        "(NotImplementedError from PyTorch, not a wrong value)")
    KNOWN_FAILURES[("aten::_standard_gamma", _check)] = (
        "PyTorch's backward is _standard_gamma_grad(self, result), which has no derivative in PyTorch "
        "(not_implemented): its own NotImplementedError")
    KNOWN_FAILURES[("aten::_embedding_bag_forward_only", _check)] = _FORWARD_ONLY
    for _pattern in ("coo*", "coalesced*", "* (csr)"):
        SAMPLE_FAILURES[("aten::_sparse_addmm", _pattern, _check)] = (
            "forward mode over the backward needs a zero tangent for the sparse operand, which PyTorch "
            "cannot build ('_efficientzerotensor' has no sparse kernel; CSR: no strides for functorch)")
KNOWN_FAILURES[("aten::_sparse_mm_reduce_impl", "fwd_over_rev_forward_ad")] = (
    "PyTorch's _sparse_mm_reduce_impl_backward has no forward formula (its NotImplementedError)")
KNOWN_FAILURES[("aten::_sparse_mm_reduce_impl", "fwd_over_rev_func")] = (
    "torch.func cannot wrap the sparse CSR operand ('Sparse CSR tensors do not have strides'), in plain PyTorch too")
KNOWN_FAILURES[("aten::_pack_padded_sequence", "fwd_over_rev_func")] = (
    "under torch.func.jvp PyTorch's _pack_padded_sequence_backward reads a data pointer that "
    "functorch's wrapped tensors lack ('Cannot access data pointer of Tensor that doesn't have "
    "storage'); forward_ad over autograd.grad passes")
_NOT_SMOOTH = ("the gradient is not differentiable at {what}: finite differences of the VJP straddle it "
               "(forward-over-reverse follows PyTorch's backward formula there)")
for _check in _FWD_OVER_REV:
    for _entry in ("aten::_cdist_forward", "aten::_pdist_forward"):
        SAMPLE_FAILURES[(_entry, "zero distance p=*", _check)] = _NOT_SMOOTH.format(what="a zero distance")
    SAMPLE_FAILURES[("aten::_cdist_forward", "zero coordinate p=0.5", _check)] = \
        _NOT_SMOOTH.format(what="a zero coordinate difference when p < 1")
    SAMPLE_FAILURES[("aten::_cdist_forward", "tie p=inf", _check)] = _NOT_SMOOTH.format(what="a tie of the max")
    SAMPLE_FAILURES[("aten::_embedding_bag", "max ties", _check)] = _NOT_SMOOTH.format(what="a tie of the max")
    for _entry, _pattern in (("aten::index_reduce", "am?? tie*"), ("aten::scatter_reduce.two", "amax ties")):
        SAMPLE_FAILURES[(_entry, _pattern, _check)] = _NOT_SMOOTH.format(what="a tie of the max/min")
    for _entry in ("aten::index_reduce", "aten::scatter_reduce.two"):
        SAMPLE_FAILURES[(_entry, "prod zeros*", _check)] = (
            "PyTorch's backward of prod divides by the input where it is nonzero and switches to another "
            "formula at zeros: the derivative of that switch is not the Hessian there, while finite "
            "differences see the smooth polynomial (measured with torch.func as well as forward_ad)")
    SAMPLE_FAILURES[("aten::scatter_reduce.two", "src larger than index", _check)] = (
        "PyTorch's backward of scatter_reduce rejects a src larger than index (size mismatch), in "
        "plain PyTorch too")
_UPSTREAM_AMAX = (
    "with `when: reduce == \"prod\"`, amax runs PyTorch's own forward formula, which rejects a src "
    "larger than index (size mismatch) exactly as plain PyTorch does")
for _check in ("gradcheck", "partial", "second_order", "output_tangents", "vmap_jvp", *_FWD_OVER_REV):
    SAMPLE_FAILURES[("aten::scatter_reduce.two", "amax src larger than index", _check)] = _UPSTREAM_AMAX
for _op in ("aten::_foreach_mm", "aten::_foreach_pow.ScalarAndTensor"):
    KNOWN_FAILURES[(_op, "vmap_jvp")] = (
        "PyTorch has no batching rule for _foreach_* ops: vmap of the primal alone fails the same way")
KNOWN_FAILURES[("aten::_standard_gamma", "vmap_jvp")] = (
    "a random op: vmap refuses it in its default randomness='error' mode, in plain PyTorch too")
SAMPLE_FAILURES[("aten::rrelu_with_noise_functional", "training, seeded", "vmap_jvp")] = (
    "training draws random slopes (lower < upper): the vmapped call and the loop draw different ones")
for _entry in ("aten::_sparse_addmm", "aten::_sparse_mm_reduce_impl"):
    SAMPLE_FAILURES[(_entry, "* (csr)", "vmap_jvp")] = (
        "vmap cannot batch a sparse CSR tensor ('Sparse CSR tensors do not have strides'), in plain PyTorch too")
SAMPLE_FAILURES[("aten::huber_loss_backward", "empty mean*", "vmap_jvp")] = (
    "PyTorch's own batching of huber_loss_backward divides by the element count in Python: vmap of "
    "the primal alone raises ZeroDivisionError on an empty mean")
SAMPLE_FAILURES[("aten::_cdist_backward", "inf norm p=inf", "vmap_jvp")] = (
    "vmap of PyTorch's _cdist_backward primal with p=inf disagrees with a loop, measured with "
    "torch_fwdad disabled (the check compares the primal output first, before any tangent)")
# The in-place overloads run their out-of-place rule on the same samples: same failures.
_IN_PLACE_OF = {"aten::index_reduce_": "aten::index_reduce", "aten::scatter_reduce_.two": "aten::scatter_reduce.two"}
for (_name, _pattern, _check), _reason in list(SAMPLE_FAILURES.items()):
    for _in_place, _functional in _IN_PLACE_OF.items():
        if _name == _functional:
            SAMPLE_FAILURES[(_in_place, _pattern, _check)] = _reason
for (_name, _check), _reason in list(KNOWN_FAILURES.items()):
    for _in_place, _functional in _IN_PLACE_OF.items():
        if _name == _functional:
            KNOWN_FAILURES[(_in_place, _check)] = _reason
# -- end second order and vmap --

# -- report-only samples of gaps torch covers upstream --
KNOWN_FAILURES[("aten::max_pool2d", "gradcheck")] = (
    "gradcheck's batched forward-grad check runs the legacy vmap, which has no batching rule "
    "for flatten.using_ints (inside max_pool2d's CPU decomposition); forward AD itself works"
)

# -- models: inference fast paths --
_FAST_PATH_NO_REVERSE = (
    "PyTorch has no reverse mode through the inference kernel {op} (nn modules take it only when "
    "nothing requires grad; autograd raises 'derivative ... is not implemented'): no VJP to compare "
    "with or to differentiate, and no gradient to compare bitwise; tests/test_models_fast_paths.py compares the primal "
    "bitwise and the tangents with finite differences end to end"
)
for _op in ("aten::_native_multi_head_attention", "aten::_transformer_encoder_layer_fwd"):
    for _check in ("jvp_vjp", "unchanged", "fwd_over_rev_func", "fwd_over_rev_forward_ad"):
        KNOWN_FAILURES[(_op, _check)] = _FAST_PATH_NO_REVERSE.format(op=_op)
# -- end models --

# -- nn.TransformerEncoder's nested-tensor path --
_TORCH_FUNC_NESTED = (
    "torch.func transforms (and the batched forward grad inside gradcheck, which is vmap) cannot "
    "wrap a nested tensor: plain PyTorch raises 'NestedTensorImpl doesn't support strides' there, "
    "tangents or not; the tangent is checked against finite differences under forward_ad in "
    "tests/test_models_nested.py"
)
_NESTED_FORWARD_OVER_REVERSE = (
    "reverse mode of the round trip goes through _nested_from_padded, which has no forward formula "
    "in PyTorch, and through nested gradients, which cannot be dual"
)
for _op in ("aten::_nested_tensor_from_mask", "aten::to_padded_tensor"):
    for _check in ("gradcheck", "jvp_vjp", "partial", "second_order", "fwd_over_rev_func", "vmap_jvp"):
        KNOWN_FAILURES[(_op, _check)] = _TORCH_FUNC_NESTED
    KNOWN_FAILURES[(_op, "fwd_over_rev_forward_ad")] = _NESTED_FORWARD_OVER_REVERSE
