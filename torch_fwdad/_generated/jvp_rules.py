# @generated from derivatives.yaml by `python -m codegen`. Do not edit:
# change derivatives.yaml or torch_fwdad/formulas, then rerun `python -m codegen`.
"""Forward rules for aten overloads, one function per derivatives.yaml entry."""

import torch  # noqa: F401  (formulas may name torch)

from torch_fwdad.engine import BuiltinEntry
from torch_fwdad.formulas import (  # noqa: F401
    BOTTOM_RIGHT,
    add_tangents,
    attention_jvp,
    batch_norm_training_jvp,
    cdist_backward_jvp,
    cdist_jvp,
    channel_bias_jvp,
    cholesky_jvp,
    conv_tbc_linear,
    ctc_loss_backward_jvp,
    ctc_loss_jvp,
    cudnn_attention_forward_jvp,
    depthwise_conv_linear,
    det_jvp,
    dist_l1_jvp,
    efficient_attention_forward_jvp,
    eigh_jvp,
    embedding_bag_dense_backward_reference,
    embedding_bag_per_sample_weights_backward_reference,
    embedding_bag_per_sample_weights_jvp,
    embedding_bag_weight_jvp,
    euclidean_dist_jvp,
    flash_attention_cpu_backward_jvp,
    flash_attention_forward_jvp,
    foreach_mm_jvp,
    foreach_pow_scalar_base_jvp,
    fused_gru_cell_jvp,
    fused_lstm_cell_jvp,
    gamma_density,
    glu_jvp,
    grid_sampler_backward_jvp,
    grid_sampler_jvp,
    hardsigmoid_jvp,
    householder_product_jvp,
    huber_loss_second_derivative,
    index_reduce_jvp,
    l1_norm_jvp,
    layer_norm_jvp,
    learnable_fake_quantize_jvp,
    log_softmax_jvp,
    logcumsumexp_jvp,
    logsumexp_jvp,
    masked_softmax_jvp,
    mkldnn_lstm_layer_jvp,
    multi_margin_loss_jvp,
    multi_margin_loss_second_derivative,
    multilabel_margin_loss_jvp,
    native_multi_head_attention_jvp,
    nested_from_mask_jvp,
    nested_to_padded_jvp,
    no_derivative,
    ormqr_jvp,
    outer_derivative,
    pack_padded_sequence_jvp,
    pdist_backward_jvp,
    pdist_jvp,
    renorm_l1_jvp,
    safe_softmax_jvp,
    scatter_reduce_jvp,
    segment_reduce_backward_jvp,
    segment_reduce_jvp,
    slogdet_jvp,
    slow_conv2d_backward_jvp,
    soft_margin_loss_second_derivative,
    softmax_jvp,
    solve_jvp,
    sparse_addmm_mat1_jvp,
    sparse_addmm_mat2_jvp,
    sparse_addmm_self_jvp,
    sparse_mm_reduce_jvp,
    straight_through_jvp,
    transformer_encoder_layer_jvp,
    weight_norm_jvp,
    zeta_q_derivative,
)


def jvp_cholesky(primals, tangents, outputs):
    # derivatives.yaml:158: cholesky(Tensor self, bool upper=False) -> Tensor
    self_p, upper = primals
    self_t, _ = tangents
    result = outputs
    result_tangent = cholesky_jvp(self_t, result, upper)
    return result_tangent


def jvp_ormqr(primals, tangents, outputs):
    # derivatives.yaml:162: ormqr(Tensor self, Tensor input2, Tensor input3, bool left=True, bool transpose=False) -> Tensor
    self_p, input2_p, input3_p, left, transpose = primals
    self_t, input2_t, input3_t, _, _ = tangents
    result = outputs
    result_tangent = ormqr_jvp(self_p, input2_p, input3_p, self_t, input2_t, input3_t, left, transpose)
    return result_tangent


def jvp__linalg_det(primals, tangents, outputs):
    # derivatives.yaml:170: _linalg_det(Tensor A) -> (Tensor result, Tensor LU, Tensor pivots)
    A_p, = primals
    A_t, = tangents
    result, LU, pivots = outputs
    result_tangent = det_jvp(A_p, A_t, result)
    return (result_tangent, None, None)


def when__linalg_det(arguments):
    # derivatives.yaml:170: when: outer_derivative
    A, = arguments
    return outer_derivative(A)


def jvp__linalg_slogdet(primals, tangents, outputs):
    # derivatives.yaml:176: _linalg_slogdet(Tensor A) -> (Tensor sign, Tensor logabsdet, Tensor LU, Tensor pivots)
    A_p, = primals
    A_t, = tangents
    sign, logabsdet, LU, pivots = outputs
    sign_tangent, logabsdet_tangent = slogdet_jvp(A_p, A_t, sign)
    return (sign_tangent, logabsdet_tangent, None, None)


def when__linalg_slogdet(arguments):
    # derivatives.yaml:176: when: outer_derivative
    A, = arguments
    return outer_derivative(A)


def jvp__linalg_solve_ex(primals, tangents, outputs):
    # derivatives.yaml:182: _linalg_solve_ex(Tensor A, Tensor B, *, bool left=True, bool check_errors=False) -> (Tensor result, Tensor LU, Tensor pivots, Tensor info)
    A_p, B_p, left, check_errors = primals
    A_t, B_t, _, _ = tangents
    result, LU, pivots, info = outputs
    result_tangent = solve_jvp(A_p, A_t, B_t, result, left)
    return (result_tangent, None, None, None)


def when__linalg_solve_ex(arguments):
    # derivatives.yaml:182: when: outer_derivative
    A, B, _, _ = arguments
    return outer_derivative(A, B)


def jvp_linalg_householder_product(primals, tangents, outputs):
    # derivatives.yaml:192: linalg_householder_product(Tensor input, Tensor tau) -> Tensor
    input_p, tau_p = primals
    input_t, tau_t = tangents
    result = outputs
    result_tangent = householder_product_jvp(input_p, tau_p, input_t, tau_t)
    return result_tangent


def when_linalg_householder_product(arguments):
    # derivatives.yaml:192: when: outer_derivative
    input, tau = arguments
    return outer_derivative(input, tau)


def jvp__linalg_eigh(primals, tangents, outputs):
    # derivatives.yaml:201: _linalg_eigh(Tensor A, str UPLO="L", bool compute_v=True) -> (Tensor eigenvalues, Tensor eigenvectors)
    A_p, UPLO, compute_v = primals
    A_t, _, _ = tangents
    eigenvalues, eigenvectors = outputs
    eigenvalues_tangent, eigenvectors_tangent = eigh_jvp(A_t, eigenvalues, eigenvectors)
    return (eigenvalues_tangent, eigenvectors_tangent)


def when__linalg_eigh(arguments):
    # derivatives.yaml:201: when: compute_v and outer_derivative
    A, _, compute_v = arguments
    return compute_v and outer_derivative(A)


def jvp_linalg_vector_norm(primals, tangents, outputs):
    # derivatives.yaml:209: linalg_vector_norm(Tensor self, Scalar ord=2, int[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor
    self_p, ord, dim, keepdim, dtype = primals
    self_t, _, _, _, _ = tangents
    result = outputs
    result_tangent = l1_norm_jvp(self_p, self_t, dim, keepdim)
    return result_tangent


def when_linalg_vector_norm(arguments):
    # derivatives.yaml:209: when: ord == 1 and dtype is None and outer_derivative
    self, ord, _, _, dtype = arguments
    return ord == 1 and dtype is None and outer_derivative(self)


def jvp_renorm(primals, tangents, outputs):
    # derivatives.yaml:218: renorm(Tensor self, Scalar p, int dim, Scalar maxnorm) -> Tensor
    self_p, p, dim, maxnorm = primals
    self_t, _, _, _ = tangents
    result = outputs
    result_tangent = renorm_l1_jvp(self_p, self_t, dim, maxnorm)
    return result_tangent


def when_renorm(arguments):
    # derivatives.yaml:218: when: p == 1 and self.dtype not in (torch.float16, torch.bfloat16) and outer_derivative
    self, p, _, _ = arguments
    return p == 1 and self.dtype not in (torch.float16, torch.bfloat16) and outer_derivative(self)


def when_renorm_(arguments):
    # derivatives.yaml:223: when: p == 1 and self.dtype not in (torch.float16, torch.bfloat16) and outer_derivative
    self, p, _, _ = arguments
    return p == 1 and self.dtype not in (torch.float16, torch.bfloat16) and outer_derivative(self)


def jvp_dist(primals, tangents, outputs):
    # derivatives.yaml:228: dist(Tensor self, Tensor other, Scalar p=2) -> Tensor
    self_p, other_p, p = primals
    self_t, other_t, _ = tangents
    result = outputs
    result_tangent = dist_l1_jvp(self_p, self_t, other_p, other_t)
    return result_tangent


def when_dist(arguments):
    # derivatives.yaml:228: when: p == 1 and outer_derivative
    self, other, p = arguments
    return p == 1 and outer_derivative(self, other)


def jvp__cdist_forward(primals, tangents, outputs):
    # derivatives.yaml:239: _cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor
    x1_p, x2_p, p, compute_mode = primals
    x1_t, x2_t, _, _ = tangents
    result = outputs
    result_tangent = cdist_jvp(x1_p, x1_t, x2_p, x2_t, p, result)
    return result_tangent


def jvp__euclidean_dist(primals, tangents, outputs):
    # derivatives.yaml:242: _euclidean_dist(Tensor x1, Tensor x2) -> Tensor
    x1_p, x2_p = primals
    x1_t, x2_t = tangents
    result = outputs
    result_tangent = euclidean_dist_jvp(x1_p, x1_t, x2_p, x2_t, result)
    return result_tangent


def jvp__pdist_forward(primals, tangents, outputs):
    # derivatives.yaml:245: _pdist_forward(Tensor self, float p=2.) -> Tensor
    self_p, p = primals
    self_t, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, pdist_jvp(self_t, self_p, p, result))
    return result_tangent


def jvp_multi_margin_loss(primals, tangents, outputs):
    # derivatives.yaml:253: multi_margin_loss(Tensor self, Tensor target, Scalar p=1, Scalar margin=1, Tensor? weight=None, int reduction=1) -> Tensor
    # non_differentiable: target, weight
    self_p, target_p, p, margin, weight_p, reduction = primals
    self_t, _, _, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, multi_margin_loss_jvp(self_t, self_p, target_p, p, margin, weight_p, reduction, result))
    return result_tangent


def jvp_multilabel_margin_loss_forward(primals, tangents, outputs):
    # derivatives.yaml:260: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
    # non_differentiable: target
    self_p, target_p, reduction = primals
    self_t, _, _ = tangents
    output, is_target = outputs
    output_tangent = None
    if self_t is not None:
        output_tangent = add_tangents(output_tangent, multilabel_margin_loss_jvp(self_t, self_p, target_p, reduction, is_target, output))
    return (output_tangent, None)


def jvp_native_layer_norm(primals, tangents, outputs):
    # derivatives.yaml:277: native_layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight, Tensor? bias, float eps) -> (Tensor, Tensor, Tensor)
    input_p, normalized_shape, weight_p, bias_p, eps = primals
    input_t, _, weight_t, bias_t, _ = tangents
    result0, result1, result2 = outputs
    result0_tangent = layer_norm_jvp(input_p, input_t, weight_p, weight_t, bias_t, normalized_shape, eps, result0)
    return (result0_tangent, None, None)


def when_native_layer_norm(arguments):
    # derivatives.yaml:277: when: outer_derivative
    input, _, weight, bias, _ = arguments
    return outer_derivative(input, weight, bias)


def jvp_native_batch_norm(primals, tangents, outputs):
    # derivatives.yaml:284: native_batch_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? running_var, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)
    input_p, weight_p, bias_p, running_mean_p, running_var_p, training, momentum, eps = primals
    input_t, weight_t, bias_t, running_mean_t, running_var_t, _, _, _ = tangents
    result0, result1, result2 = outputs
    result0_tangent = batch_norm_training_jvp(input_p, input_t, weight_p, weight_t, bias_t, eps, result0)
    return (result0_tangent, None, None)


def when_native_batch_norm(arguments):
    # derivatives.yaml:284: when: training and outer_derivative
    input, weight, bias, running_mean, running_var, training, _, _ = arguments
    return training and outer_derivative(input, weight, bias, running_mean, running_var)


def jvp__native_batch_norm_legit(primals, tangents, outputs):
    # derivatives.yaml:291: _native_batch_norm_legit(Tensor input, Tensor? weight, Tensor? bias, Tensor(a!) running_mean, Tensor(b!) running_var, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)
    # same_as: aten::native_batch_norm, whose formulas follow
    input_p, weight_p, bias_p, running_mean_p, running_var_p, training, momentum, eps = primals
    input_t, weight_t, bias_t, running_mean_t, running_var_t, _, _, _ = tangents
    result0, result1, result2 = outputs
    result0_tangent = batch_norm_training_jvp(input_p, input_t, weight_p, weight_t, bias_t, eps, result0)
    return (result0_tangent, None, None)


def when__native_batch_norm_legit(arguments):
    # derivatives.yaml:291: when: training and outer_derivative
    input, weight, bias, running_mean, running_var, training, _, _ = arguments
    return training and outer_derivative(input, weight, bias, running_mean, running_var)


def jvp__native_batch_norm_legit_no_stats(primals, tangents, outputs):
    # derivatives.yaml:296: _native_batch_norm_legit.no_stats(Tensor input, Tensor? weight, Tensor? bias, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)
    # same_as: aten::native_batch_norm, whose formulas follow
    input_p, weight_p, bias_p, training, momentum, eps = primals
    input_t, weight_t, bias_t, _, _, _ = tangents
    result0, result1, result2 = outputs
    result0_tangent = batch_norm_training_jvp(input_p, input_t, weight_p, weight_t, bias_t, eps, result0)
    return (result0_tangent, None, None)


def when__native_batch_norm_legit_no_stats(arguments):
    # derivatives.yaml:296: when: training and outer_derivative
    input, weight, bias, training, _, _ = arguments
    return training and outer_derivative(input, weight, bias)


def jvp__batch_norm_with_update(primals, tangents, outputs):
    # derivatives.yaml:301: _batch_norm_with_update(Tensor input, Tensor? weight, Tensor? bias, Tensor(a!) running_mean, Tensor(b!) running_var, float momentum, float eps) -> (Tensor, Tensor, Tensor, Tensor)
    # same_as: aten::native_batch_norm, whose formulas follow
    input_p, weight_p, bias_p, running_mean_p, running_var_p, momentum, eps = primals
    input_t, weight_t, bias_t, running_mean_t, running_var_t, _, _ = tangents
    result0, result1, result2, result3 = outputs
    result0_tangent = batch_norm_training_jvp(input_p, input_t, weight_p, weight_t, bias_t, eps, result0)
    return (result0_tangent, None, None, None)


def when__batch_norm_with_update(arguments):
    # derivatives.yaml:301: when: outer_derivative
    input, weight, bias, running_mean, running_var, _, _ = arguments
    return outer_derivative(input, weight, bias, running_mean, running_var)


def jvp_index_reduce(primals, tangents, outputs):
    # derivatives.yaml:309: index_reduce(Tensor self, int dim, Tensor index, Tensor source, str reduce, *, bool include_self=True) -> Tensor
    self_p, dim, index_p, source_p, reduce, include_self = primals
    self_t, _, index_t, source_t, _, _ = tangents
    result = outputs
    result_tangent = index_reduce_jvp(self_p, self_t, dim, index_p, source_p, source_t, reduce, include_self, result)
    return result_tangent


def jvp_scatter_reduce_two(primals, tangents, outputs):
    # derivatives.yaml:315: scatter_reduce.two(Tensor self, int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True) -> Tensor
    self_p, dim, index_p, src_p, reduce, include_self = primals
    self_t, _, index_t, src_t, _, _ = tangents
    result = outputs
    result_tangent = scatter_reduce_jvp(self_p, self_t, dim, index_p, src_p, src_t, reduce, include_self, result)
    return result_tangent


def when_scatter_reduce_two(arguments):
    # derivatives.yaml:315: when: reduce not in ("sum", "mean", "amax", "amin")
    _, _, _, _, reduce, _ = arguments
    return reduce not in ("sum", "mean", "amax", "amin")


def when_scatter_reduce__two(arguments):
    # derivatives.yaml:324: when: reduce not in ("sum", "mean", "amax", "amin")
    _, _, _, _, reduce, _ = arguments
    return reduce not in ("sum", "mean", "amax", "amin")


def jvp__softmax(primals, tangents, outputs):
    # derivatives.yaml:338: _softmax(Tensor self, int dim, bool half_to_float) -> Tensor
    self_p, dim, half_to_float = primals
    self_t, _, _ = tangents
    result = outputs
    result_tangent = softmax_jvp(self_p, self_t, dim, result)
    return result_tangent


def when__softmax(arguments):
    # derivatives.yaml:338: when: outer_derivative
    self, _, _ = arguments
    return outer_derivative(self)


def jvp__safe_softmax(primals, tangents, outputs):
    # derivatives.yaml:344: _safe_softmax(Tensor self, int dim, ScalarType? dtype=None) -> Tensor
    self_p, dim, dtype = primals
    self_t, _, _ = tangents
    result = outputs
    result_tangent = safe_softmax_jvp(self_p, self_t, dim, result)
    return result_tangent


def when__safe_softmax(arguments):
    # derivatives.yaml:344: when: outer_derivative
    self, _, _ = arguments
    return outer_derivative(self)


def jvp__log_softmax(primals, tangents, outputs):
    # derivatives.yaml:349: _log_softmax(Tensor self, int dim, bool half_to_float) -> Tensor
    self_p, dim, half_to_float = primals
    self_t, _, _ = tangents
    result = outputs
    result_tangent = log_softmax_jvp(self_p, self_t, dim)
    return result_tangent


def when__log_softmax(arguments):
    # derivatives.yaml:349: when: outer_derivative
    self, _, _ = arguments
    return outer_derivative(self)


def jvp_logsumexp(primals, tangents, outputs):
    # derivatives.yaml:354: logsumexp(Tensor self, int[1] dim, bool keepdim=False) -> Tensor
    self_p, dim, keepdim = primals
    self_t, _, _ = tangents
    result = outputs
    result_tangent = logsumexp_jvp(self_p, self_t, dim, keepdim)
    return result_tangent


def when_logsumexp(arguments):
    # derivatives.yaml:354: when: outer_derivative
    self, _, _ = arguments
    return outer_derivative(self)


def jvp_logcumsumexp(primals, tangents, outputs):
    # derivatives.yaml:362: logcumsumexp(Tensor self, int dim) -> Tensor
    self_p, dim = primals
    self_t, _ = tangents
    result = outputs
    result_tangent = logcumsumexp_jvp(self_p, self_t, dim)
    return result_tangent


def jvp_glu(primals, tangents, outputs):
    # derivatives.yaml:368: glu(Tensor self, int dim=-1) -> Tensor
    self_p, dim = primals
    self_t, _ = tangents
    result = outputs
    result_tangent = glu_jvp(self_p, self_t, dim)
    return result_tangent


def when_glu(arguments):
    # derivatives.yaml:368: when: outer_derivative
    self, _ = arguments
    return outer_derivative(self)


def jvp_hardsigmoid(primals, tangents, outputs):
    # derivatives.yaml:373: hardsigmoid(Tensor self) -> Tensor
    self_p, = primals
    self_t, = tangents
    result = outputs
    result_tangent = hardsigmoid_jvp(self_p, self_t)
    return result_tangent


def when_hardsigmoid(arguments):
    # derivatives.yaml:373: when: outer_derivative
    self, = arguments
    return outer_derivative(self)


def jvp__scaled_dot_product_flash_attention_for_cpu(primals, tangents, outputs):
    # derivatives.yaml:380: _scaled_dot_product_flash_attention_for_cpu(Tensor query, Tensor key, Tensor value, float dropout_p=0., bool is_causal=False, *, Tensor? attn_mask=None, float? scale=None) -> (Tensor output, Tensor logsumexp)
    query_p, key_p, value_p, dropout_p, is_causal, attn_mask_p, scale = primals
    query_t, key_t, value_t, _, _, attn_mask_t, _ = tangents
    output, logsumexp = outputs
    output_tangent, logsumexp_tangent = attention_jvp((query_p, key_p, value_p, attn_mask_p), (query_t, key_t, value_t, attn_mask_t), output, logsumexp, scale=scale, is_causal=is_causal, dropout_p=dropout_p)
    return (output_tangent, logsumexp_tangent)


def jvp__scaled_dot_product_flash_attention_for_cpu_backward(primals, tangents, outputs):
    # derivatives.yaml:383: _scaled_dot_product_flash_attention_for_cpu_backward(Tensor grad_out, Tensor query, Tensor key, Tensor value, Tensor out, Tensor logsumexp, float dropout_p, bool is_causal, *, Tensor? attn_mask=None, float? scale=None) -> (Tensor grad_query, Tensor grad_key, Tensor grad_value)
    grad_out_p, query_p, key_p, value_p, out_p, logsumexp_p, dropout_p, is_causal, attn_mask_p, scale = primals
    grad_out_t, query_t, key_t, value_t, out_t, logsumexp_t, _, _, attn_mask_t, _ = tangents
    grad_query, grad_key, grad_value = outputs
    grad_query_tangent, grad_key_tangent, grad_value_tangent = flash_attention_cpu_backward_jvp((grad_out_p, query_p, key_p, value_p, out_p, logsumexp_p, attn_mask_p), (grad_out_t, query_t, key_t, value_t, out_t, logsumexp_t, attn_mask_t), scale=scale, is_causal=is_causal, dropout_p=dropout_p)
    return (grad_query_tangent, grad_key_tangent, grad_value_tangent)


def jvp__scaled_dot_product_flash_attention(primals, tangents, outputs):
    # derivatives.yaml:388: _scaled_dot_product_flash_attention(Tensor query, Tensor key, Tensor value, float dropout_p=0., bool is_causal=False, bool return_debug_mask=False, *, float? scale=None) -> (Tensor output, Tensor logsumexp, Tensor cum_seq_q, Tensor cum_seq_k, SymInt max_q, SymInt max_k, Tensor rng_state, Tensor unused, Tensor debug_attn_mask)
    query_p, key_p, value_p, dropout_p, is_causal, return_debug_mask, scale = primals
    query_t, key_t, value_t, _, _, _, _ = tangents
    output, logsumexp, cum_seq_q, cum_seq_k, max_q, max_k, rng_state, unused, debug_attn_mask = outputs
    output_tangent, logsumexp_tangent = attention_jvp((query_p, key_p, value_p), (query_t, key_t, value_t), output, logsumexp, scale=scale, is_causal=is_causal, dropout_p=dropout_p, alignment=BOTTOM_RIGHT)
    return (output_tangent, logsumexp_tangent, None, None, None, None, None, None, None)


def jvp__scaled_dot_product_efficient_attention(primals, tangents, outputs):
    # derivatives.yaml:391: _scaled_dot_product_efficient_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_bias, bool compute_log_sumexp, float dropout_p=0., bool is_causal=False, *, float? scale=None) -> (Tensor output, Tensor log_sumexp, Tensor philox_seed, Tensor philox_offset)
    query_p, key_p, value_p, attn_bias_p, compute_log_sumexp, dropout_p, is_causal, scale = primals
    query_t, key_t, value_t, attn_bias_t, _, _, _, _ = tangents
    output, log_sumexp, philox_seed, philox_offset = outputs
    output_tangent, log_sumexp_tangent = attention_jvp((query_p, key_p, value_p, attn_bias_p), (query_t, key_t, value_t, attn_bias_t), output, log_sumexp, scale=scale, is_causal=is_causal, dropout_p=dropout_p)
    return (output_tangent, log_sumexp_tangent, None, None)


def jvp__scaled_dot_product_cudnn_attention(primals, tangents, outputs):
    # derivatives.yaml:394: _scaled_dot_product_cudnn_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_bias, bool compute_log_sumexp, float dropout_p=0., bool is_causal=False, bool return_debug_mask=False, *, float? scale=None) -> (Tensor output, Tensor logsumexp, Tensor cum_seq_q, Tensor cum_seq_k, SymInt max_q, SymInt max_k, Tensor philox_seed, Tensor philox_offset, Tensor debug_attn_mask)
    query_p, key_p, value_p, attn_bias_p, compute_log_sumexp, dropout_p, is_causal, return_debug_mask, scale = primals
    query_t, key_t, value_t, attn_bias_t, _, _, _, _, _ = tangents
    output, logsumexp, cum_seq_q, cum_seq_k, max_q, max_k, philox_seed, philox_offset, debug_attn_mask = outputs
    output_tangent, logsumexp_tangent = attention_jvp((query_p, key_p, value_p, attn_bias_p), (query_t, key_t, value_t, attn_bias_t), output, logsumexp, scale=scale, is_causal=is_causal, dropout_p=dropout_p)
    return (output_tangent, logsumexp_tangent, None, None, None, None, None, None, None)


def jvp__scaled_dot_product_fused_attention_overrideable(primals, tangents, outputs):
    # derivatives.yaml:397: _scaled_dot_product_fused_attention_overrideable(Tensor query, Tensor key, Tensor value, Tensor? attn_bias=None, float dropout_p=0., bool is_causal=False, bool return_debug_mask=False, *, float? scale=None) -> (Tensor output, Tensor logsumexp, Tensor cum_seq_q, Tensor cum_seq_k, SymInt max_q, SymInt max_k, Tensor philox_seed, Tensor philox_offset, Tensor debug_attn_mask)
    # same_as: aten::_scaled_dot_product_cudnn_attention, whose formulas follow
    query_p, key_p, value_p, attn_bias_p, dropout_p, is_causal, return_debug_mask, scale = primals
    query_t, key_t, value_t, attn_bias_t, _, _, _, _ = tangents
    output, logsumexp, cum_seq_q, cum_seq_k, max_q, max_k, philox_seed, philox_offset, debug_attn_mask = outputs
    output_tangent, logsumexp_tangent = attention_jvp((query_p, key_p, value_p, attn_bias_p), (query_t, key_t, value_t, attn_bias_t), output, logsumexp, scale=scale, is_causal=is_causal, dropout_p=dropout_p)
    return (output_tangent, logsumexp_tangent, None, None, None, None, None, None, None)


def jvp__flash_attention_forward(primals, tangents, outputs):
    # derivatives.yaml:400: _flash_attention_forward(Tensor query, Tensor key, Tensor value, Tensor? cum_seq_q, Tensor? cum_seq_k, SymInt max_q, SymInt max_k, float dropout_p, bool is_causal, bool return_debug_mask, *, float? scale=None, SymInt? window_size_left=None, SymInt? window_size_right=None, Tensor? seqused_k=None, Tensor? alibi_slopes=None, Tensor? block_table=None, int? num_splits=None) -> (Tensor output, Tensor softmax_logsumexp, Tensor rng_state, Tensor unused, Tensor debug_attn_mask)
    query_p, key_p, value_p, cum_seq_q_p, cum_seq_k_p, max_q, max_k, dropout_p, is_causal, return_debug_mask, scale, window_size_left, window_size_right, seqused_k_p, alibi_slopes_p, block_table_p, num_splits = primals
    query_t, key_t, value_t, cum_seq_q_t, cum_seq_k_t, _, _, _, _, _, _, _, _, seqused_k_t, alibi_slopes_t, block_table_t, _ = tangents
    output, softmax_logsumexp, rng_state, unused, debug_attn_mask = outputs
    output_tangent, softmax_logsumexp_tangent = flash_attention_forward_jvp((query_p, key_p, value_p), (query_t, key_t, value_t), output, softmax_logsumexp, scale=scale, is_causal=is_causal, dropout_p=dropout_p, cum_seq_q=cum_seq_q_p, cum_seq_k=cum_seq_k_p, window_size_left=window_size_left, window_size_right=window_size_right, seqused_k=seqused_k_p, alibi_slopes=alibi_slopes_p, block_table=block_table_p)
    return (output_tangent, softmax_logsumexp_tangent, None, None, None)


def jvp__efficient_attention_forward(primals, tangents, outputs):
    # derivatives.yaml:403: _efficient_attention_forward(Tensor query, Tensor key, Tensor value, Tensor? bias, Tensor? cu_seqlens_q, Tensor? cu_seqlens_k, SymInt? max_seqlen_q, SymInt? max_seqlen_k, float dropout_p, int custom_mask_type, bool compute_log_sumexp=False, *, float? scale=None, Tensor? seqlen_k=None, int? window_size=None) -> (Tensor output, Tensor logsumexp, Tensor philox_seed, Tensor philox_offset, SymInt max_seqlen_batch_q, SymInt max_seqlen_batch_k)
    query_p, key_p, value_p, bias_p, cu_seqlens_q_p, cu_seqlens_k_p, max_seqlen_q, max_seqlen_k, dropout_p, custom_mask_type, compute_log_sumexp, scale, seqlen_k_p, window_size = primals
    query_t, key_t, value_t, bias_t, cu_seqlens_q_t, cu_seqlens_k_t, _, _, _, _, _, _, seqlen_k_t, _ = tangents
    output, logsumexp, philox_seed, philox_offset, max_seqlen_batch_q, max_seqlen_batch_k = outputs
    output_tangent, logsumexp_tangent = efficient_attention_forward_jvp((query_p, key_p, value_p, bias_p), (query_t, key_t, value_t, bias_t), output, logsumexp, scale=scale, custom_mask_type=custom_mask_type, dropout_p=dropout_p, cu_seqlens_q=cu_seqlens_q_p, cu_seqlens_k=cu_seqlens_k_p, seqlen_k=seqlen_k_p, window_size=window_size)
    return (output_tangent, logsumexp_tangent, None, None, None, None)


def jvp__cudnn_attention_forward(primals, tangents, outputs):
    # derivatives.yaml:406: _cudnn_attention_forward(Tensor query, Tensor key, Tensor value, Tensor? attn_bias, Tensor? cum_seq_q, Tensor? cum_seq_k, SymInt max_q, SymInt max_k, bool compute_log_sumexp, float dropout_p=0., bool is_causal=False, bool return_debug_mask=False, *, float? scale=None) -> (Tensor output, Tensor logsumexp, Tensor cum_seq_q, Tensor cum_seq_k, SymInt max_q, SymInt max_k, Tensor philox_seed, Tensor philox_offset, Tensor debug_attn_mask)
    query_p, key_p, value_p, attn_bias_p, cum_seq_q_p, cum_seq_k_p, max_q, max_k, compute_log_sumexp, dropout_p, is_causal, return_debug_mask, scale = primals
    query_t, key_t, value_t, attn_bias_t, cum_seq_q_t, cum_seq_k_t, _, _, _, _, _, _, _ = tangents
    output, logsumexp, cum_seq_q, cum_seq_k, max_q, max_k, philox_seed, philox_offset, debug_attn_mask = outputs
    output_tangent, logsumexp_tangent = cudnn_attention_forward_jvp((query_p, key_p, value_p, attn_bias_p), (query_t, key_t, value_t, attn_bias_t), output, logsumexp, scale=scale, is_causal=is_causal, dropout_p=dropout_p, cum_seq_q=cum_seq_q_p, cum_seq_k=cum_seq_k_p)
    return (output_tangent, logsumexp_tangent, None, None, None, None, None, None, None)


def jvp__masked_softmax(primals, tangents, outputs):
    # derivatives.yaml:409: _masked_softmax(Tensor self, Tensor mask, int? dim=None, int? mask_type=None) -> Tensor
    self_p, mask_p, dim, mask_type = primals
    self_t, mask_t, _, _ = tangents
    result = outputs
    result_tangent = masked_softmax_jvp(self_t, result, dim)
    return result_tangent


def jvp__native_multi_head_attention(primals, tangents, outputs):
    # derivatives.yaml:419: _native_multi_head_attention(Tensor query, Tensor key, Tensor value, int embed_dim, int num_head, Tensor qkv_weight, Tensor qkv_bias, Tensor proj_weight, Tensor proj_bias, Tensor? mask=None, bool need_weights=True, bool average_attn_weights=True, int? mask_type=None) -> (Tensor, Tensor)
    query_p, key_p, value_p, embed_dim, num_head, qkv_weight_p, qkv_bias_p, proj_weight_p, proj_bias_p, mask_p, need_weights, average_attn_weights, mask_type = primals
    query_t, key_t, value_t, _, _, qkv_weight_t, qkv_bias_t, proj_weight_t, proj_bias_t, mask_t, _, _, _ = tangents
    result0, result1 = outputs
    result0_tangent, result1_tangent = native_multi_head_attention_jvp(query_p, key_p, value_p, embed_dim, num_head, qkv_weight_p, qkv_bias_p, proj_weight_p, proj_bias_p, mask_p, need_weights, average_attn_weights, mask_type, query_t, key_t, value_t, qkv_weight_t, qkv_bias_t, proj_weight_t, proj_bias_t, result0, result1)
    return (result0_tangent, result1_tangent)


def jvp__transformer_encoder_layer_fwd(primals, tangents, outputs):
    # derivatives.yaml:422: _transformer_encoder_layer_fwd(Tensor src, int embed_dim, int num_heads, Tensor qkv_weight, Tensor qkv_bias, Tensor proj_weight, Tensor proj_bias, bool use_gelu, bool norm_first, float eps, Tensor norm_weight_1, Tensor norm_bias_1, Tensor norm_weight_2, Tensor norm_bias_2, Tensor ffn_weight_1, Tensor ffn_bias_1, Tensor ffn_weight_2, Tensor ffn_bias_2, Tensor? mask=None, int? mask_type=None) -> Tensor
    src_p, embed_dim, num_heads, qkv_weight_p, qkv_bias_p, proj_weight_p, proj_bias_p, use_gelu, norm_first, eps, norm_weight_1_p, norm_bias_1_p, norm_weight_2_p, norm_bias_2_p, ffn_weight_1_p, ffn_bias_1_p, ffn_weight_2_p, ffn_bias_2_p, mask_p, mask_type = primals
    src_t, _, _, qkv_weight_t, qkv_bias_t, proj_weight_t, proj_bias_t, _, _, _, norm_weight_1_t, norm_bias_1_t, norm_weight_2_t, norm_bias_2_t, ffn_weight_1_t, ffn_bias_1_t, ffn_weight_2_t, ffn_bias_2_t, mask_t, _ = tangents
    result = outputs
    result_tangent = transformer_encoder_layer_jvp(src_p, num_heads, qkv_weight_p, qkv_bias_p, proj_weight_p, proj_bias_p, use_gelu, norm_first, eps, norm_weight_1_p, norm_bias_1_p, norm_weight_2_p, norm_bias_2_p, ffn_weight_1_p, ffn_bias_1_p, ffn_weight_2_p, ffn_bias_2_p, mask_p, mask_type, src_t, qkv_weight_t, qkv_bias_t, proj_weight_t, proj_bias_t, norm_weight_1_t, norm_bias_1_t, norm_weight_2_t, norm_bias_2_t, ffn_weight_1_t, ffn_bias_1_t, ffn_weight_2_t, ffn_bias_2_t, result)
    return result_tangent


def jvp__nested_tensor_from_mask(primals, tangents, outputs):
    # derivatives.yaml:431: _nested_tensor_from_mask(Tensor t, Tensor mask, bool mask_check=True) -> Tensor
    t_p, mask_p, mask_check = primals
    t_t, mask_t, _ = tangents
    result = outputs
    result_tangent = nested_from_mask_jvp(t_t, result)
    return result_tangent


def jvp_to_padded_tensor(primals, tangents, outputs):
    # derivatives.yaml:434: to_padded_tensor(Tensor self, float padding, SymInt[]? output_size=None) -> Tensor
    self_p, padding, output_size = primals
    self_t, _, _ = tangents
    result = outputs
    result_tangent = nested_to_padded_jvp(self_t, result)
    return result_tangent


def jvp_grid_sampler_2d(primals, tangents, outputs):
    # derivatives.yaml:441: grid_sampler_2d(Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> Tensor
    input_p, grid_p, interpolation_mode, padding_mode, align_corners = primals
    input_t, grid_t, _, _, _ = tangents
    result = outputs
    op = torch.ops.aten.grid_sampler_2d.default
    result_tangent = grid_sampler_jvp(op, input_p, input_t, grid_p, grid_t, interpolation_mode, padding_mode, align_corners)
    return result_tangent


def jvp__grid_sampler_2d_cpu_fallback(primals, tangents, outputs):
    # derivatives.yaml:444: _grid_sampler_2d_cpu_fallback(Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> Tensor
    # same_as: aten::grid_sampler_2d, whose formulas follow
    input_p, grid_p, interpolation_mode, padding_mode, align_corners = primals
    input_t, grid_t, _, _, _ = tangents
    result = outputs
    op = torch.ops.aten._grid_sampler_2d_cpu_fallback.default
    result_tangent = grid_sampler_jvp(op, input_p, input_t, grid_p, grid_t, interpolation_mode, padding_mode, align_corners)
    return result_tangent


def jvp_grid_sampler_3d(primals, tangents, outputs):
    # derivatives.yaml:447: grid_sampler_3d(Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> Tensor
    # same_as: aten::grid_sampler_2d, whose formulas follow
    input_p, grid_p, interpolation_mode, padding_mode, align_corners = primals
    input_t, grid_t, _, _, _ = tangents
    result = outputs
    op = torch.ops.aten.grid_sampler_3d.default
    result_tangent = grid_sampler_jvp(op, input_p, input_t, grid_p, grid_t, interpolation_mode, padding_mode, align_corners)
    return result_tangent


def jvp__embedding_bag(primals, tangents, outputs):
    # derivatives.yaml:450: _embedding_bag(Tensor weight, Tensor indices, Tensor offsets, bool scale_grad_by_freq=False, int mode=0, bool sparse=False, Tensor? per_sample_weights=None, bool include_last_offset=False, int padding_idx=-1) -> (Tensor, Tensor, Tensor, Tensor)
    weight_p, indices_p, offsets_p, scale_grad_by_freq, mode, sparse, per_sample_weights_p, include_last_offset, padding_idx = primals
    weight_t, indices_t, offsets_t, _, _, _, per_sample_weights_t, _, _ = tangents
    result0, result1, result2, result3 = outputs
    result0_tangent = None
    if weight_t is not None:
        result0_tangent = add_tangents(result0_tangent, embedding_bag_weight_jvp(weight_t, indices_p, offsets_p, mode, per_sample_weights_p, include_last_offset, padding_idx, result2, result3))
    if per_sample_weights_t is not None:
        result0_tangent = add_tangents(result0_tangent, embedding_bag_per_sample_weights_jvp(weight_p, indices_p, offsets_p, mode, per_sample_weights_t, include_last_offset, padding_idx))
    return (result0_tangent, None, None, None)


def jvp__embedding_bag_forward_only(primals, tangents, outputs):
    # derivatives.yaml:456: _embedding_bag_forward_only(Tensor weight, Tensor indices, Tensor offsets, bool scale_grad_by_freq=False, int mode=0, bool sparse=False, Tensor? per_sample_weights=None, bool include_last_offset=False, int padding_idx=-1) -> (Tensor, Tensor, Tensor, Tensor)
    # same_as: aten::_embedding_bag, whose formulas follow
    weight_p, indices_p, offsets_p, scale_grad_by_freq, mode, sparse, per_sample_weights_p, include_last_offset, padding_idx = primals
    weight_t, indices_t, offsets_t, _, _, _, per_sample_weights_t, _, _ = tangents
    result0, result1, result2, result3 = outputs
    result0_tangent = None
    if weight_t is not None:
        result0_tangent = add_tangents(result0_tangent, embedding_bag_weight_jvp(weight_t, indices_p, offsets_p, mode, per_sample_weights_p, include_last_offset, padding_idx, result2, result3))
    if per_sample_weights_t is not None:
        result0_tangent = add_tangents(result0_tangent, embedding_bag_per_sample_weights_jvp(weight_p, indices_p, offsets_p, mode, per_sample_weights_t, include_last_offset, padding_idx))
    return (result0_tangent, None, None, None)


def jvp_soft_margin_loss_backward(primals, tangents, outputs):
    # derivatives.yaml:468: soft_margin_loss_backward(Tensor grad_output, Tensor self, Tensor target, int reduction) -> Tensor
    grad_output_p, self_p, target_p, reduction = primals
    grad_output_t, self_t, target_t, _ = tangents
    result = outputs
    result_tangent = None
    if grad_output_t is not None:  # grad_output: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.soft_margin_loss_backward.default(grad_output_t, self_p, target_p, reduction))
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, soft_margin_loss_second_derivative(self_t, grad_output_p, self_p, target_p, reduction))
    if target_t is not None:  # target: {not_implemented: PyTorch's double backward has no formula for target}
        result_tangent = add_tangents(result_tangent, no_derivative(target_t, 'soft_margin_loss_backward', 'target'))
    return result_tangent


def jvp_huber_loss_backward(primals, tangents, outputs):
    # derivatives.yaml:474: huber_loss_backward(Tensor grad_output, Tensor self, Tensor target, int reduction, float delta) -> Tensor
    grad_output_p, self_p, target_p, reduction, delta = primals
    grad_output_t, self_t, target_t, _, _ = tangents
    result = outputs
    result_tangent = None
    if grad_output_t is not None:  # grad_output: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.huber_loss_backward.default(grad_output_t, self_p, target_p, reduction, delta))
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, huber_loss_second_derivative(self_t, grad_output_p, self_p, target_p, reduction, delta))
    if target_t is not None:
        result_tangent = add_tangents(result_tangent, -huber_loss_second_derivative(target_t, grad_output_p, self_p, target_p, reduction, delta))
    return result_tangent


def jvp_native_dropout_backward(primals, tangents, outputs):
    # derivatives.yaml:480: native_dropout_backward(Tensor grad_output, Tensor mask, float scale) -> Tensor
    # non_differentiable: mask
    grad_output_p, mask_p, scale = primals
    grad_output_t, _, _ = tangents
    result = outputs
    result_tangent = None
    if grad_output_t is not None:  # grad_output: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.native_dropout_backward.default(grad_output_t, mask_p, scale))
    return result_tangent


def jvp__cdist_backward(primals, tangents, outputs):
    # derivatives.yaml:485: _cdist_backward(Tensor grad, Tensor x1, Tensor x2, float p, Tensor cdist) -> Tensor
    grad_p, x1_p, x2_p, p, cdist_p = primals
    grad_t, x1_t, x2_t, _, cdist_t = tangents
    result = outputs
    result_tangent = cdist_backward_jvp((grad_p, x1_p, x2_p, cdist_p), (grad_t, x1_t, x2_t, cdist_t), p, result)
    return result_tangent


def jvp__pdist_backward(primals, tangents, outputs):
    # derivatives.yaml:488: _pdist_backward(Tensor grad, Tensor self, float p, Tensor pdist) -> Tensor
    grad_p, self_p, p, pdist_p = primals
    grad_t, self_t, _, pdist_t = tangents
    result = outputs
    result_tangent = pdist_backward_jvp((grad_p, self_p, pdist_p), (grad_t, self_t, pdist_t), p, result)
    return result_tangent


def jvp_grid_sampler_2d_backward(primals, tangents, outputs):
    # derivatives.yaml:493: grid_sampler_2d_backward(Tensor grad_output, Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners, bool[2] output_mask) -> (Tensor, Tensor)
    grad_output_p, input_p, grid_p, interpolation_mode, padding_mode, align_corners, output_mask = primals
    grad_output_t, input_t, grid_t, _, _, _, _ = tangents
    result0, result1 = outputs
    op = torch.ops.aten.grid_sampler_2d_backward.default
    result0_tangent, result1_tangent = grid_sampler_backward_jvp(op, (grad_output_p, input_p, grid_p), (grad_output_t, input_t, grid_t), (result0, result1), interpolation_mode, padding_mode, align_corners)
    return (result0_tangent, result1_tangent)


def jvp_grid_sampler_3d_backward(primals, tangents, outputs):
    # derivatives.yaml:496: grid_sampler_3d_backward(Tensor grad_output, Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners, bool[2] output_mask) -> (Tensor, Tensor)
    # same_as: aten::grid_sampler_2d_backward, whose formulas follow
    grad_output_p, input_p, grid_p, interpolation_mode, padding_mode, align_corners, output_mask = primals
    grad_output_t, input_t, grid_t, _, _, _, _ = tangents
    result0, result1 = outputs
    op = torch.ops.aten.grid_sampler_3d_backward.default
    result0_tangent, result1_tangent = grid_sampler_backward_jvp(op, (grad_output_p, input_p, grid_p), (grad_output_t, input_t, grid_t), (result0, result1), interpolation_mode, padding_mode, align_corners)
    return (result0_tangent, result1_tangent)


def jvp__grid_sampler_2d_cpu_fallback_backward(primals, tangents, outputs):
    # derivatives.yaml:500: _grid_sampler_2d_cpu_fallback_backward(Tensor grad_output, Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> (Tensor, Tensor)
    # same_as: aten::grid_sampler_2d_backward, whose formulas follow
    grad_output_p, input_p, grid_p, interpolation_mode, padding_mode, align_corners = primals
    grad_output_t, input_t, grid_t, _, _, _ = tangents
    result0, result1 = outputs
    op = torch.ops.aten._grid_sampler_2d_cpu_fallback_backward.default
    result0_tangent, result1_tangent = grid_sampler_backward_jvp(op, (grad_output_p, input_p, grid_p), (grad_output_t, input_t, grid_t), (result0, result1), interpolation_mode, padding_mode, align_corners)
    return (result0_tangent, result1_tangent)


def jvp__embedding_bag_dense_backward(primals, tangents, outputs):
    # derivatives.yaml:505: _embedding_bag_dense_backward(Tensor grad, Tensor indices, Tensor offset2bag, Tensor bag_size, Tensor maximum_indices, SymInt num_weights, bool scale_grad_by_freq, int mode, Tensor? per_sample_weights, int padding_idx=-1) -> Tensor
    grad_p, indices_p, offset2bag_p, bag_size_p, maximum_indices_p, num_weights, scale_grad_by_freq, mode, per_sample_weights_p, padding_idx = primals
    grad_t, indices_t, offset2bag_t, bag_size_t, maximum_indices_t, _, _, _, per_sample_weights_t, _ = tangents
    result = outputs
    result_tangent = None
    if grad_t is not None:
        result_tangent = add_tangents(result_tangent, embedding_bag_dense_backward_reference(grad_t, indices_p, offset2bag_p, bag_size_p, maximum_indices_p, num_weights, scale_grad_by_freq, mode, per_sample_weights_p, padding_idx))
    if per_sample_weights_t is not None:
        result_tangent = add_tangents(result_tangent, embedding_bag_dense_backward_reference(grad_p, indices_p, offset2bag_p, bag_size_p, maximum_indices_p, num_weights, scale_grad_by_freq, mode, per_sample_weights_t, padding_idx))
    return result_tangent


def jvp__embedding_bag_backward(primals, tangents, outputs):
    # derivatives.yaml:511: _embedding_bag_backward(Tensor grad, Tensor indices, Tensor offsets, Tensor offset2bag, Tensor bag_size, Tensor maximum_indices, SymInt num_weights, bool scale_grad_by_freq, int mode, bool sparse, Tensor? per_sample_weights, int padding_idx=-1) -> Tensor
    grad_p, indices_p, offsets_p, offset2bag_p, bag_size_p, maximum_indices_p, num_weights, scale_grad_by_freq, mode, sparse, per_sample_weights_p, padding_idx = primals
    grad_t, indices_t, offsets_t, offset2bag_t, bag_size_t, maximum_indices_t, _, _, _, _, per_sample_weights_t, _ = tangents
    result = outputs
    result_tangent = None
    if grad_t is not None:
        result_tangent = add_tangents(result_tangent, embedding_bag_dense_backward_reference(grad_t, indices_p, offset2bag_p, bag_size_p, maximum_indices_p, num_weights, scale_grad_by_freq, mode, per_sample_weights_p, padding_idx, offsets_p))
    if per_sample_weights_t is not None:
        result_tangent = add_tangents(result_tangent, embedding_bag_dense_backward_reference(grad_p, indices_p, offset2bag_p, bag_size_p, maximum_indices_p, num_weights, scale_grad_by_freq, mode, per_sample_weights_t, padding_idx, offsets_p))
    return result_tangent


def jvp__embedding_bag_per_sample_weights_backward(primals, tangents, outputs):
    # derivatives.yaml:518: _embedding_bag_per_sample_weights_backward(Tensor grad, Tensor weight, Tensor indices, Tensor offsets, Tensor offset2bag, int mode, int padding_idx=-1) -> Tensor
    grad_p, weight_p, indices_p, offsets_p, offset2bag_p, mode, padding_idx = primals
    grad_t, weight_t, indices_t, offsets_t, offset2bag_t, _, _ = tangents
    result = outputs
    result_tangent = None
    if grad_t is not None:
        result_tangent = add_tangents(result_tangent, embedding_bag_per_sample_weights_backward_reference(grad_t, weight_p, indices_p, offsets_p, offset2bag_p, mode, padding_idx))
    if weight_t is not None:
        result_tangent = add_tangents(result_tangent, embedding_bag_per_sample_weights_backward_reference(grad_p, weight_t, indices_p, offsets_p, offset2bag_p, mode, padding_idx))
    return result_tangent


def jvp_multi_margin_loss_backward(primals, tangents, outputs):
    # derivatives.yaml:527: multi_margin_loss_backward(Tensor grad_output, Tensor self, Tensor target, Scalar p, Scalar margin, Tensor? weight=None, int reduction=1) -> Tensor
    # non_differentiable: target
    grad_output_p, self_p, target_p, p, margin, weight_p, reduction = primals
    grad_output_t, self_t, _, _, _, weight_t, _ = tangents
    result = outputs
    result_tangent = None
    if grad_output_t is not None:  # grad_output: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.multi_margin_loss_backward.default(grad_output_t, self_p, target_p, p, margin, weight_p, reduction))
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, multi_margin_loss_second_derivative(self_t, grad_output_p, self_p, target_p, p, margin, weight_p, reduction))
    if weight_t is not None:  # weight: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.multi_margin_loss_backward.default(grad_output_p, self_p, target_p, p, margin, weight_t, reduction))
    return result_tangent


def jvp_multilabel_margin_loss_backward(primals, tangents, outputs):
    # derivatives.yaml:536: multilabel_margin_loss_backward(Tensor grad_output, Tensor self, Tensor target, int reduction, Tensor is_target) -> Tensor
    # non_differentiable: target, is_target
    grad_output_p, self_p, target_p, reduction, is_target_p = primals
    grad_output_t, self_t, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if grad_output_t is not None:  # grad_output: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.multilabel_margin_loss_backward.default(grad_output_t, self_p, target_p, reduction, is_target_p))
    return result_tangent


def jvp_hardsigmoid_backward(primals, tangents, outputs):
    # derivatives.yaml:544: hardsigmoid_backward(Tensor grad_output, Tensor self) -> Tensor
    grad_output_p, self_p = primals
    grad_output_t, self_t = tangents
    result = outputs
    result_tangent = None
    if grad_output_t is not None:  # grad_output: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.hardsigmoid_backward.default(grad_output_t, self_p))
    return result_tangent


def jvp__ctc_loss_backward(primals, tangents, outputs):
    # derivatives.yaml:551: _ctc_loss_backward(Tensor grad, Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, Tensor neg_log_likelihood, Tensor log_alpha, int blank, bool zero_infinity=False) -> Tensor
    grad_p, log_probs_p, targets_p, input_lengths, target_lengths, neg_log_likelihood_p, log_alpha_p, blank, zero_infinity = primals
    grad_t, log_probs_t, targets_t, _, _, neg_log_likelihood_t, log_alpha_t, _, _ = tangents
    result = outputs
    result_tangent = ctc_loss_backward_jvp((grad_p, log_probs_p, neg_log_likelihood_p, log_alpha_p), (grad_t, log_probs_t, neg_log_likelihood_t, log_alpha_t), targets_p, input_lengths, target_lengths, blank, zero_infinity, result)
    return result_tangent


def jvp__ctc_loss_backward_Tensor(primals, tangents, outputs):
    # derivatives.yaml:554: _ctc_loss_backward.Tensor(Tensor grad, Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, Tensor neg_log_likelihood, Tensor log_alpha, int blank, bool zero_infinity=False) -> Tensor
    grad_p, log_probs_p, targets_p, input_lengths_p, target_lengths_p, neg_log_likelihood_p, log_alpha_p, blank, zero_infinity = primals
    grad_t, log_probs_t, targets_t, input_lengths_t, target_lengths_t, neg_log_likelihood_t, log_alpha_t, _, _ = tangents
    result = outputs
    result_tangent = ctc_loss_backward_jvp((grad_p, log_probs_p, neg_log_likelihood_p, log_alpha_p), (grad_t, log_probs_t, neg_log_likelihood_t, log_alpha_t), targets_p, input_lengths_p, target_lengths_p, blank, zero_infinity, result)
    return result_tangent


def jvp__segment_reduce_backward(primals, tangents, outputs):
    # derivatives.yaml:559: _segment_reduce_backward(Tensor grad, Tensor output, Tensor data, str reduce, *, Tensor? lengths=None, Tensor? offsets=None, int axis=0, Scalar? initial=None) -> Tensor
    grad_p, output_p, data_p, reduce, lengths_p, offsets_p, axis, initial = primals
    grad_t, output_t, data_t, _, lengths_t, offsets_t, _, _ = tangents
    result = outputs
    result_tangent = segment_reduce_backward_jvp((grad_p, output_p, data_p), (grad_t, output_t, data_t), reduce, lengths_p, offsets_p, axis, initial)
    return result_tangent


def jvp_igamma(primals, tangents, outputs):
    # derivatives.yaml:570: igamma(Tensor self, Tensor other) -> Tensor
    self_p, other_p = primals
    self_t, other_t = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: {not_implemented: no closed form for the derivative in the order a (PyTorch's backward raises too)}
        result_tangent = add_tangents(result_tangent, no_derivative(self_t, 'igamma', 'self'))
    if other_t is not None:
        result_tangent = add_tangents(result_tangent, gamma_density(self_p, other_p) * other_t)
    return result_tangent


def jvp_igammac(primals, tangents, outputs):
    # derivatives.yaml:575: igammac(Tensor self, Tensor other) -> Tensor
    self_p, other_p = primals
    self_t, other_t = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: {not_implemented: no closed form for the derivative in the order a (PyTorch's backward raises too)}
        result_tangent = add_tangents(result_tangent, no_derivative(self_t, 'igammac', 'self'))
    if other_t is not None:
        result_tangent = add_tangents(result_tangent, -gamma_density(self_p, other_p) * other_t)
    return result_tangent


def jvp_special_zeta(primals, tangents, outputs):
    # derivatives.yaml:580: special_zeta(Tensor self, Tensor other) -> Tensor
    self_p, other_p = primals
    self_t, other_t = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: {not_implemented: no closed form for the derivative in the exponent s (PyTorch's backward raises too)}
        result_tangent = add_tangents(result_tangent, no_derivative(self_t, 'special_zeta', 'self'))
    if other_t is not None:
        result_tangent = add_tangents(result_tangent, zeta_q_derivative(self_p, other_p) * other_t)
    return result_tangent


def jvp_special_zeta_self_scalar(primals, tangents, outputs):
    # derivatives.yaml:585: special_zeta.self_scalar(Scalar self, Tensor other) -> Tensor
    self, other_p = primals
    _, other_t = tangents
    result = outputs
    result_tangent = None
    if other_t is not None:
        result_tangent = add_tangents(result_tangent, zeta_q_derivative(self, other_p) * other_t)
    return result_tangent


def jvp__standard_gamma(primals, tangents, outputs):
    # derivatives.yaml:590: _standard_gamma(Tensor self, Generator? generator=None) -> Tensor
    self_p, generator = primals
    self_t, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, torch._standard_gamma_grad(self_p, result) * self_t)
    return result_tangent


def jvp_fake_quantize_per_tensor_affine_cachemask(primals, tangents, outputs):
    # derivatives.yaml:599: fake_quantize_per_tensor_affine_cachemask(Tensor self, float scale, int zero_point, int quant_min, int quant_max) -> (Tensor output, Tensor mask)
    self_p, scale, zero_point, quant_min, quant_max = primals
    self_t, _, _, _, _ = tangents
    output, mask = outputs
    output_tangent = None
    if self_t is not None:
        output_tangent = add_tangents(output_tangent, straight_through_jvp(self_t, mask))
    return (output_tangent, None)


def jvp__fake_quantize_per_tensor_affine_cachemask_tensor_qparams(primals, tangents, outputs):
    # derivatives.yaml:603: _fake_quantize_per_tensor_affine_cachemask_tensor_qparams(Tensor self, Tensor scale, Tensor zero_point, Tensor fake_quant_enabled, int quant_min, int quant_max) -> (Tensor output, Tensor mask)
    # non_differentiable: scale, zero_point, fake_quant_enabled
    self_p, scale_p, zero_point_p, fake_quant_enabled_p, quant_min, quant_max = primals
    self_t, _, _, _, _, _ = tangents
    output, mask = outputs
    output_tangent = None
    if self_t is not None:
        output_tangent = add_tangents(output_tangent, straight_through_jvp(self_t, mask))
    return (output_tangent, None)


def jvp_fake_quantize_per_channel_affine_cachemask(primals, tangents, outputs):
    # derivatives.yaml:610: fake_quantize_per_channel_affine_cachemask(Tensor self, Tensor scale, Tensor zero_point, int axis, int quant_min, int quant_max) -> (Tensor output, Tensor mask)
    # non_differentiable: scale, zero_point
    self_p, scale_p, zero_point_p, axis, quant_min, quant_max = primals
    self_t, _, _, _, _, _ = tangents
    output, mask = outputs
    output_tangent = None
    if self_t is not None:
        output_tangent = add_tangents(output_tangent, straight_through_jvp(self_t, mask))
    return (output_tangent, None)


def jvp__fake_quantize_learnable_per_tensor_affine(primals, tangents, outputs):
    # derivatives.yaml:619: _fake_quantize_learnable_per_tensor_affine(Tensor self, Tensor scale, Tensor zero_point, int quant_min, int quant_max, float grad_factor=1.) -> Tensor
    self_p, scale_p, zero_point_p, quant_min, quant_max, grad_factor = primals
    self_t, scale_t, zero_point_t, _, _, _ = tangents
    result = outputs
    result_tangent = learnable_fake_quantize_jvp(self_p, self_t, scale_p, scale_t, zero_point_p, zero_point_t, quant_min, quant_max, grad_factor)
    return result_tangent


def jvp__fake_quantize_learnable_per_channel_affine(primals, tangents, outputs):
    # derivatives.yaml:622: _fake_quantize_learnable_per_channel_affine(Tensor self, Tensor scale, Tensor zero_point, int axis, int quant_min, int quant_max, float grad_factor=1.) -> Tensor
    self_p, scale_p, zero_point_p, axis, quant_min, quant_max, grad_factor = primals
    self_t, scale_t, zero_point_t, _, _, _, _ = tangents
    result = outputs
    result_tangent = learnable_fake_quantize_jvp(self_p, self_t, scale_p, scale_t, zero_point_p, zero_point_t, quant_min, quant_max, grad_factor, axis)
    return result_tangent


def jvp_slow_conv_transpose2d(primals, tangents, outputs):
    # derivatives.yaml:627: slow_conv_transpose2d(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias=None, SymInt[2] stride=[1, 1], SymInt[2] padding=[0, 0], SymInt[2] output_padding=[0, 0], SymInt[2] dilation=[1, 1]) -> Tensor
    self_p, weight_p, kernel_size, bias_p, stride, padding, output_padding, dilation = primals
    self_t, weight_t, _, bias_t, _, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv_transpose2d.default(self_t, weight_p, kernel_size, None, stride, padding, output_padding, dilation))
    if weight_t is not None:  # weight: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv_transpose2d.default(self_p, weight_t, kernel_size, None, stride, padding, output_padding, dilation))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result))
    return result_tangent


def jvp_slow_conv_transpose3d(primals, tangents, outputs):
    # derivatives.yaml:633: slow_conv_transpose3d(Tensor self, Tensor weight, SymInt[3] kernel_size, Tensor? bias=None, SymInt[3] stride=[1, 1, 1], SymInt[3] padding=[0, 0, 0], SymInt[3] output_padding=[0, 0, 0], SymInt[3] dilation=[1, 1, 1]) -> Tensor
    self_p, weight_p, kernel_size, bias_p, stride, padding, output_padding, dilation = primals
    self_t, weight_t, _, bias_t, _, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv_transpose3d.default(self_t, weight_p, kernel_size, None, stride, padding, output_padding, dilation))
    if weight_t is not None:  # weight: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv_transpose3d.default(self_p, weight_t, kernel_size, None, stride, padding, output_padding, dilation))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result))
    return result_tangent


def jvp__slow_conv2d_forward(primals, tangents, outputs):
    # derivatives.yaml:639: _slow_conv2d_forward(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias, SymInt[2] stride, SymInt[2] padding) -> Tensor
    self_p, weight_p, kernel_size, bias_p, stride, padding = primals
    self_t, weight_t, _, bias_t, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten._slow_conv2d_forward.default(self_t, weight_p, kernel_size, None, stride, padding))
    if weight_t is not None:  # weight: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten._slow_conv2d_forward.default(self_p, weight_t, kernel_size, None, stride, padding))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result))
    return result_tangent


def jvp_slow_conv3d_forward(primals, tangents, outputs):
    # derivatives.yaml:645: slow_conv3d_forward(Tensor self, Tensor weight, SymInt[3] kernel_size, Tensor? bias, SymInt[3] stride, SymInt[3] padding) -> Tensor
    self_p, weight_p, kernel_size, bias_p, stride, padding = primals
    self_t, weight_t, _, bias_t, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv3d_forward.default(self_t, weight_p, kernel_size, None, stride, padding))
    if weight_t is not None:  # weight: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv3d_forward.default(self_p, weight_t, kernel_size, None, stride, padding))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result))
    return result_tangent


def jvp_slow_conv_dilated2d(primals, tangents, outputs):
    # derivatives.yaml:651: slow_conv_dilated2d(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias=None, SymInt[2] stride=[1, 1], SymInt[2] padding=[0, 0], SymInt[2] dilation=[1, 1]) -> Tensor
    self_p, weight_p, kernel_size, bias_p, stride, padding, dilation = primals
    self_t, weight_t, _, bias_t, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv_dilated2d.default(self_t, weight_p, kernel_size, None, stride, padding, dilation))
    if weight_t is not None:  # weight: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv_dilated2d.default(self_p, weight_t, kernel_size, None, stride, padding, dilation))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result))
    return result_tangent


def jvp_slow_conv_dilated3d(primals, tangents, outputs):
    # derivatives.yaml:657: slow_conv_dilated3d(Tensor self, Tensor weight, SymInt[3] kernel_size, Tensor? bias=None, SymInt[3] stride=[1, 1, 1], SymInt[3] padding=[0, 0, 0], SymInt[3] dilation=[1, 1, 1]) -> Tensor
    self_p, weight_p, kernel_size, bias_p, stride, padding, dilation = primals
    self_t, weight_t, _, bias_t, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv_dilated3d.default(self_t, weight_p, kernel_size, None, stride, padding, dilation))
    if weight_t is not None:  # weight: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten.slow_conv_dilated3d.default(self_p, weight_t, kernel_size, None, stride, padding, dilation))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result))
    return result_tangent


def jvp__conv_depthwise2d(primals, tangents, outputs):
    # derivatives.yaml:666: _conv_depthwise2d(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias, SymInt[2] stride, SymInt[2] padding, SymInt[2] dilation) -> Tensor
    self_p, weight_p, kernel_size, bias_p, stride, padding, dilation = primals
    self_t, weight_t, _, bias_t, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, depthwise_conv_linear(self_t, weight_p, kernel_size, stride, padding, dilation))
    if weight_t is not None:
        result_tangent = add_tangents(result_tangent, depthwise_conv_linear(self_p, weight_t, kernel_size, stride, padding, dilation))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result))
    return result_tangent


def jvp_conv_depthwise3d(primals, tangents, outputs):
    # derivatives.yaml:672: conv_depthwise3d(Tensor self, Tensor weight, SymInt[3] kernel_size, Tensor? bias, SymInt[3] stride, SymInt[3] padding, SymInt[3] dilation) -> Tensor
    self_p, weight_p, kernel_size, bias_p, stride, padding, dilation = primals
    self_t, weight_t, _, bias_t, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, depthwise_conv_linear(self_t, weight_p, kernel_size, stride, padding, dilation))
    if weight_t is not None:
        result_tangent = add_tangents(result_tangent, depthwise_conv_linear(self_p, weight_t, kernel_size, stride, padding, dilation))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result))
    return result_tangent


def jvp_conv_tbc(primals, tangents, outputs):
    # derivatives.yaml:679: conv_tbc(Tensor self, Tensor weight, Tensor bias, int pad=0) -> Tensor
    self_p, weight_p, bias_p, pad = primals
    self_t, weight_t, bias_t, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, conv_tbc_linear(self_t, weight_p, pad))
    if weight_t is not None:
        result_tangent = add_tangents(result_tangent, conv_tbc_linear(self_p, weight_t, pad))
    if bias_t is not None:
        result_tangent = add_tangents(result_tangent, channel_bias_jvp(bias_t, result, -1))
    return result_tangent


def jvp__slow_conv2d_backward_output_mask(primals, tangents, outputs):
    # derivatives.yaml:687: _slow_conv2d_backward.output_mask(Tensor grad_output, Tensor self, Tensor weight, SymInt[2] kernel_size, SymInt[2] stride, SymInt[2] padding, bool[3] output_mask) -> (Tensor grad_input, Tensor grad_weight, Tensor grad_bias)
    grad_output_p, self_p, weight_p, kernel_size, stride, padding, output_mask = primals
    grad_output_t, self_t, weight_t, _, _, _, _ = tangents
    grad_input, grad_weight, grad_bias = outputs
    grad_input_tangent, grad_weight_tangent, grad_bias_tangent = slow_conv2d_backward_jvp((grad_output_p, self_p, weight_p), (grad_output_t, self_t, weight_t), kernel_size, stride, padding, output_mask)
    return (grad_input_tangent, grad_weight_tangent, grad_bias_tangent)


def jvp__weight_norm_interface(primals, tangents, outputs):
    # derivatives.yaml:693: _weight_norm_interface(Tensor v, Tensor g, int dim=0) -> (Tensor, Tensor)
    v_p, g_p, dim = primals
    v_t, g_t, _ = tangents
    result0, result1 = outputs
    result0_tangent, result1_tangent = weight_norm_jvp(v_p, v_t, g_p, g_t, result1)
    return (result0_tangent, result1_tangent)


def jvp_rrelu_with_noise_functional(primals, tangents, outputs):
    # derivatives.yaml:700: rrelu_with_noise_functional(Tensor self, Tensor noise, Scalar lower=0.125, Scalar upper=0.33333333333333331, bool training=False, Generator? generator=None) -> (Tensor, Tensor noise_out)
    # non_differentiable: noise
    self_p, noise_p, lower, upper, training, generator = primals
    self_t, _, _, _, _, _ = tangents
    result0, result1 = outputs
    result0_tangent = None
    if self_t is not None:
        result0_tangent = add_tangents(result0_tangent, torch.ops.aten.rrelu_with_noise_backward(self_t, self_p, result1, lower, upper, training, False))
    return (result0_tangent, None)


def jvp__foreach_mm(primals, tangents, outputs):
    # derivatives.yaml:706: _foreach_mm(Tensor[] self, Tensor[] mat2) -> Tensor[]
    self_p, mat2_p = primals
    self_t, mat2_t = tangents
    result = outputs
    result_tangent = foreach_mm_jvp(self_p, self_t, mat2_p, mat2_t)
    return result_tangent


def jvp__foreach_pow_ScalarAndTensor(primals, tangents, outputs):
    # derivatives.yaml:709: _foreach_pow.ScalarAndTensor(Scalar self, Tensor[] exponent) -> Tensor[]
    self, exponent_p = primals
    _, exponent_t = tangents
    result = outputs
    result_tangent = None
    if exponent_t is not None:
        result_tangent = add_tangents(result_tangent, foreach_pow_scalar_base_jvp(self, exponent_p, exponent_t, result))
    return result_tangent


def jvp__grouped_mm(primals, tangents, outputs):
    # derivatives.yaml:716: _grouped_mm(Tensor self, Tensor mat2, Tensor? offs=None, Tensor? bias=None, ScalarType? out_dtype=None) -> Tensor
    # non_differentiable: offs
    self_p, mat2_p, offs_p, bias_p, out_dtype = primals
    self_t, mat2_t, _, bias_t, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten._grouped_mm.default(self_t, mat2_p, offs_p, None, out_dtype))
    if mat2_t is not None:  # mat2: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten._grouped_mm.default(self_p, mat2_t, offs_p, None, out_dtype))
    if bias_t is not None:  # bias: {not_implemented: the kernels refuse a bias and PyTorch's backward does not differentiate it}
        result_tangent = add_tangents(result_tangent, no_derivative(bias_t, '_grouped_mm', 'bias'))
    return result_tangent


def jvp__pack_padded_sequence(primals, tangents, outputs):
    # derivatives.yaml:727: _pack_padded_sequence(Tensor input, Tensor lengths, bool batch_first) -> (Tensor, Tensor)
    # non_differentiable: lengths
    input_p, lengths_p, batch_first = primals
    input_t, _, _ = tangents
    result0, result1 = outputs
    result0_tangent = None
    if input_t is not None:
        result0_tangent = add_tangents(result0_tangent, pack_padded_sequence_jvp(input_t, lengths_p, batch_first))
    return (result0_tangent, None)


def jvp__fused_dropout(primals, tangents, outputs):
    # derivatives.yaml:737: _fused_dropout(Tensor self, float p, Generator? generator=None) -> (Tensor, Tensor)
    self_p, p, generator = primals
    self_t, _, _ = tangents
    result0, result1 = outputs
    result0_tangent = None
    if self_t is not None:
        result0_tangent = add_tangents(result0_tangent, self_t * result1.type_as(self_t) * (1.0 / p))
    return (result0_tangent, None)


def jvp__thnn_fused_lstm_cell(primals, tangents, outputs):
    # derivatives.yaml:742: _thnn_fused_lstm_cell(Tensor input_gates, Tensor hidden_gates, Tensor cx, Tensor? input_bias=None, Tensor? hidden_bias=None) -> (Tensor, Tensor, Tensor)
    input_gates_p, hidden_gates_p, cx_p, input_bias_p, hidden_bias_p = primals
    input_gates_t, hidden_gates_t, cx_t, input_bias_t, hidden_bias_t = tangents
    result0, result1, result2 = outputs
    result0_tangent, result1_tangent = fused_lstm_cell_jvp(input_gates_p, hidden_gates_p, cx_p, input_bias_p, hidden_bias_p, input_gates_t, hidden_gates_t, cx_t, input_bias_t, hidden_bias_t, result1)
    return (result0_tangent, result1_tangent, None)


def jvp_mkldnn_rnn_layer(primals, tangents, outputs):
    # derivatives.yaml:750: mkldnn_rnn_layer(Tensor input, Tensor weight0, Tensor weight1, Tensor weight2, Tensor weight3, Tensor hx_, Tensor cx_, bool reverse, int[] batch_sizes, int mode, int hidden_size, int num_layers, bool has_biases, bool bidirectional, bool batch_first, bool train) -> (Tensor, Tensor, Tensor, Tensor)
    input_p, weight0_p, weight1_p, weight2_p, weight3_p, hx__p, cx__p, reverse, batch_sizes, mode, hidden_size, num_layers, has_biases, bidirectional, batch_first, train = primals
    input_t, weight0_t, weight1_t, weight2_t, weight3_t, hx__t, cx__t, _, _, _, _, _, _, _, _, _ = tangents
    result0, result1, result2, result3 = outputs
    result0_tangent, result1_tangent, result2_tangent = mkldnn_lstm_layer_jvp(input_p, weight0_p, weight1_p, weight2_p, weight3_p, hx__p, cx__p, input_t, weight0_t, weight1_t, weight2_t, weight3_t, hx__t, cx__t, reverse, batch_sizes, mode, has_biases, result0)
    return (result0_tangent, result1_tangent, result2_tangent, None)


def jvp__thnn_fused_gru_cell(primals, tangents, outputs):
    # derivatives.yaml:754: _thnn_fused_gru_cell(Tensor input_gates, Tensor hidden_gates, Tensor hx, Tensor? input_bias=None, Tensor? hidden_bias=None) -> (Tensor, Tensor)
    input_gates_p, hidden_gates_p, hx_p, input_bias_p, hidden_bias_p = primals
    input_gates_t, hidden_gates_t, hx_t, input_bias_t, hidden_bias_t = tangents
    result0, result1 = outputs
    result0_tangent = fused_gru_cell_jvp(input_gates_p, hidden_gates_p, hx_p, input_bias_p, hidden_bias_p, input_gates_t, hidden_gates_t, hx_t, input_bias_t, hidden_bias_t)
    return (result0_tangent, None)


def jvp__sparse_addmm(primals, tangents, outputs):
    # derivatives.yaml:763: _sparse_addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor
    self_p, mat1_p, mat2_p, beta, alpha = primals
    self_t, mat1_t, mat2_t, _, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:
        result_tangent = add_tangents(result_tangent, sparse_addmm_self_jvp(self_t, beta, result))
    if mat1_t is not None:
        result_tangent = add_tangents(result_tangent, sparse_addmm_mat1_jvp(mat1_t, mat2_p, alpha))
    if mat2_t is not None:
        result_tangent = add_tangents(result_tangent, sparse_addmm_mat2_jvp(mat1_p, mat2_t, alpha, result))
    return result_tangent


def jvp__sparse_mm_reduce_impl(primals, tangents, outputs):
    # derivatives.yaml:771: _sparse_mm_reduce_impl(Tensor self, Tensor other, str reduce) -> (Tensor, Tensor)
    self_p, other_p, reduce = primals
    self_t, other_t, _ = tangents
    result0, result1 = outputs
    result0_tangent = None
    if other_t is not None:
        result0_tangent = add_tangents(result0_tangent, sparse_mm_reduce_jvp(self_p, other_p, other_t, reduce, result1))
    return (result0_tangent, None)


def jvp__ctc_loss(primals, tangents, outputs):
    # derivatives.yaml:784: _ctc_loss(Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)
    log_probs_p, targets_p, input_lengths, target_lengths, blank, zero_infinity = primals
    log_probs_t, targets_t, _, _, _, _ = tangents
    result0, result1 = outputs
    result0_tangent, result1_tangent = ctc_loss_jvp(log_probs_t, log_probs_p, targets_p, input_lengths, target_lengths, result0, result1, blank, zero_infinity)
    return (result0_tangent, result1_tangent)


def jvp__ctc_loss_Tensor(primals, tangents, outputs):
    # derivatives.yaml:787: _ctc_loss.Tensor(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)
    log_probs_p, targets_p, input_lengths_p, target_lengths_p, blank, zero_infinity = primals
    log_probs_t, targets_t, input_lengths_t, target_lengths_t, _, _ = tangents
    result0, result1 = outputs
    result0_tangent, result1_tangent = ctc_loss_jvp(log_probs_t, log_probs_p, targets_p, input_lengths_p, target_lengths_p, result0, result1, blank, zero_infinity)
    return (result0_tangent, result1_tangent)


def jvp_segment_reduce(primals, tangents, outputs):
    # derivatives.yaml:790: segment_reduce(Tensor data, str reduce, *, Tensor? lengths=None, Tensor? indices=None, Tensor? offsets=None, int axis=0, bool unsafe=False, Scalar? initial=None) -> Tensor
    # non_differentiable: lengths, indices, offsets
    data_p, reduce, lengths_p, indices_p, offsets_p, axis, unsafe, initial = primals
    data_t, _, _, _, _, _, _, _ = tangents
    result = outputs
    result_tangent = None
    if data_t is not None:
        result_tangent = add_tangents(result_tangent, segment_reduce_jvp(data_t, data_p, result, reduce, lengths_p, offsets_p, axis, initial))
    return result_tangent


ENTRIES = (
    BuiltinEntry('aten::cholesky', 'cholesky(Tensor self, bool upper=False) -> Tensor', jvp_cholesky, 'derivatives.yaml:158'),
    BuiltinEntry('aten::ormqr', 'ormqr(Tensor self, Tensor input2, Tensor input3, bool left=True, bool transpose=False) -> Tensor', jvp_ormqr, 'derivatives.yaml:162'),
    BuiltinEntry('aten::_linalg_det', '_linalg_det(Tensor A) -> (Tensor result, Tensor LU, Tensor pivots)', jvp__linalg_det, 'derivatives.yaml:170', corrects_upstream="torch's linalg_det_jvp reads LU, declared non-differentiable, so the gradient of the tangent (reverse mode through a JVP, forward-over-forward) misses its dependence on A; under an outer derivative this entry refactors A differentiably", when=when__linalg_det, output_differentiability=(True, False, False)),
    BuiltinEntry('aten::_linalg_slogdet', '_linalg_slogdet(Tensor A) -> (Tensor sign, Tensor logabsdet, Tensor LU, Tensor pivots)', jvp__linalg_slogdet, 'derivatives.yaml:176', corrects_upstream="torch's slogdet_jvp reads LU, declared non-differentiable, so the gradient of the tangent (reverse mode through a JVP, forward-over-forward) misses its dependence on A; under an outer derivative this entry refactors A differentiably", when=when__linalg_slogdet, output_differentiability=(True, True, False, False)),
    BuiltinEntry('aten::_linalg_solve_ex', '_linalg_solve_ex(Tensor A, Tensor B, *, bool left=True, bool check_errors=False) -> (Tensor result, Tensor LU, Tensor pivots, Tensor info)', jvp__linalg_solve_ex, 'derivatives.yaml:182', corrects_upstream="torch's linalg_solve_jvp solves with LU, declared non-differentiable, so the gradient of the tangent (reverse mode through a JVP, forward-over-forward) misses its dependence on A; under an outer derivative this entry solves with A differentiably", when=when__linalg_solve_ex, output_differentiability=(True, False, False, False)),
    BuiltinEntry('aten::linalg_householder_product', 'linalg_householder_product(Tensor input, Tensor tau) -> Tensor', jvp_linalg_householder_product, 'derivatives.yaml:192', corrects_upstream="the gradient of torch's householder_product_jvp tangent (reverse mode through a JVP, forward-over-forward) disagrees with finite differences; under an outer derivative this entry computes the tangent from householder products, whose own derivatives are right", when=when_linalg_householder_product),
    BuiltinEntry('aten::_linalg_eigh', '_linalg_eigh(Tensor A, str UPLO="L", bool compute_v=True) -> (Tensor eigenvalues, Tensor eigenvectors)', jvp__linalg_eigh, 'derivatives.yaml:201', corrects_upstream="torch's linalg_eig_jvp divides by zero on the diagonal of the eigenvalue gaps before zeroing it, so the gradient of the eigenvector tangent (reverse mode through a JVP) is NaN; under an outer derivative this entry masks the diagonal first", when=when__linalg_eigh),
    BuiltinEntry('aten::linalg_vector_norm', 'linalg_vector_norm(Tensor self, Scalar ord=2, int[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor', jvp_linalg_vector_norm, 'derivatives.yaml:209', corrects_upstream="torch's linalg_vector_norm_jvp for ord 1 multiplies sgn's saved output in place, so reverse mode through a forward_ad tangent of an input requiring grad raises; under an outer derivative this entry computes the same formula out of place", when=when_linalg_vector_norm),
    BuiltinEntry('aten::renorm', 'renorm(Tensor self, Scalar p, int dim, Scalar maxnorm) -> Tensor', jvp_renorm, 'derivatives.yaml:218', corrects_upstream="torch's renorm_jvp for p 1 multiplies sgn's saved output in place (in norm_jvp), so reverse mode through a forward_ad tangent of an input requiring grad raises; under an outer derivative this entry computes the same formula out of place", when=when_renorm),
    BuiltinEntry('aten::renorm_', 'renorm_(Tensor(a!) self, Scalar p, int dim, Scalar maxnorm) -> Tensor(a!)', None, 'derivatives.yaml:223', corrects_upstream='as renorm, whose in-place tangent reaches the same in-place 1-norm tangent', when=when_renorm_, in_place_of='aten::renorm'),
    BuiltinEntry('aten::dist', 'dist(Tensor self, Tensor other, Scalar p=2) -> Tensor', jvp_dist, 'derivatives.yaml:228', corrects_upstream="torch's dist tangent for p 1 multiplies sgn's saved output of self - other in place (in norm_jvp), so reverse mode through a forward_ad tangent of inputs requiring grad raises; under an outer derivative this entry computes the same formula out of place", when=when_dist),
    BuiltinEntry('aten::_cdist_forward', '_cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor', jvp__cdist_forward, 'derivatives.yaml:239'),
    BuiltinEntry('aten::_euclidean_dist', '_euclidean_dist(Tensor x1, Tensor x2) -> Tensor', jvp__euclidean_dist, 'derivatives.yaml:242'),
    BuiltinEntry('aten::_pdist_forward', '_pdist_forward(Tensor self, float p=2.) -> Tensor', jvp__pdist_forward, 'derivatives.yaml:245'),
    BuiltinEntry('aten::multi_margin_loss', 'multi_margin_loss(Tensor self, Tensor target, Scalar p=1, Scalar margin=1, Tensor? weight=None, int reduction=1) -> Tensor', jvp_multi_margin_loss, 'derivatives.yaml:253'),
    BuiltinEntry('aten::multilabel_margin_loss_forward', 'multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)', jvp_multilabel_margin_loss_forward, 'derivatives.yaml:260', output_differentiability=(True, False)),
    BuiltinEntry('aten::native_layer_norm', 'native_layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight, Tensor? bias, float eps) -> (Tensor, Tensor, Tensor)', jvp_native_layer_norm, 'derivatives.yaml:277', corrects_upstream="torch's layer_norm_jvp reads mean and rstd, whose gradient native_layer_norm's backward drops, so the gradient of the tangent (reverse mode through a JVP, forward-over-forward) misses their dependence on the input; under an outer derivative this entry recomputes them differentiably", when=when_native_layer_norm, output_differentiability=(True, False, False)),
    BuiltinEntry('aten::native_batch_norm', 'native_batch_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? running_var, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)', jvp_native_batch_norm, 'derivatives.yaml:284', corrects_upstream="in training, torch's batch_norm_jvp reads save_mean and save_invstd, whose gradient the backward drops, so the gradient of the tangent (reverse mode through a JVP, forward-over-forward) misses their dependence on the input; under an outer derivative this entry recomputes them differentiably", when=when_native_batch_norm, output_differentiability=(True, False, False)),
    BuiltinEntry('aten::_native_batch_norm_legit', '_native_batch_norm_legit(Tensor input, Tensor? weight, Tensor? bias, Tensor(a!) running_mean, Tensor(b!) running_var, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)', jvp__native_batch_norm_legit, 'derivatives.yaml:291', corrects_upstream='as native_batch_norm', when=when__native_batch_norm_legit, output_differentiability=(True, False, False)),
    BuiltinEntry('aten::_native_batch_norm_legit.no_stats', '_native_batch_norm_legit.no_stats(Tensor input, Tensor? weight, Tensor? bias, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)', jvp__native_batch_norm_legit_no_stats, 'derivatives.yaml:296', corrects_upstream='as native_batch_norm', when=when__native_batch_norm_legit_no_stats, output_differentiability=(True, False, False)),
    BuiltinEntry('aten::_batch_norm_with_update', '_batch_norm_with_update(Tensor input, Tensor? weight, Tensor? bias, Tensor(a!) running_mean, Tensor(b!) running_var, float momentum, float eps) -> (Tensor, Tensor, Tensor, Tensor)', jvp__batch_norm_with_update, 'derivatives.yaml:301', corrects_upstream='as native_batch_norm (this overload always computes batch statistics)', when=when__batch_norm_with_update, output_differentiability=(True, False, False, False)),
    BuiltinEntry('aten::index_reduce', 'index_reduce(Tensor self, int dim, Tensor index, Tensor source, str reduce, *, bool include_self=True) -> Tensor', jvp_index_reduce, 'derivatives.yaml:309'),
    BuiltinEntry('aten::scatter_reduce.two', 'scatter_reduce.two(Tensor self, int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True) -> Tensor', jvp_scatter_reduce_two, 'derivatives.yaml:315', corrects_upstream='torch\'s scatter_reduce_jvp returns no tangent for reduce="prod" (a silent zero) nor for names reverse mode refuses; this entry computes the prod tangent, zeros in self and src included, and refuses other names as reverse mode does', when=when_scatter_reduce_two),
    BuiltinEntry('aten::index_reduce_', 'index_reduce_(Tensor(a!) self, int dim, Tensor index, Tensor source, str reduce, *, bool include_self=True) -> Tensor(a!)', None, 'derivatives.yaml:321', in_place_of='aten::index_reduce'),
    BuiltinEntry('aten::scatter_reduce_.two', 'scatter_reduce_.two(Tensor(a!) self, int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True) -> Tensor(a!)', None, 'derivatives.yaml:324', corrects_upstream='as scatter_reduce.two, whose prod tangent torch gives as a silent zero in place too', when=when_scatter_reduce__two, in_place_of='aten::scatter_reduce.two'),
    BuiltinEntry('aten::_softmax', '_softmax(Tensor self, int dim, bool half_to_float) -> Tensor', jvp__softmax, 'derivatives.yaml:338', corrects_upstream="torch's softmax formula scales exp's saved output in place, so reverse mode through a forward_ad tangent of an input requiring grad raises; under an outer derivative this entry computes the same formula out of place", when=when__softmax),
    BuiltinEntry('aten::_safe_softmax', '_safe_softmax(Tensor self, int dim, ScalarType? dtype=None) -> Tensor', jvp__safe_softmax, 'derivatives.yaml:344', corrects_upstream="torch's _safe_softmax formula scales exp's saved output in place, so reverse mode through a forward_ad tangent of an input requiring grad raises; under an outer derivative this entry computes the same formula out of place", when=when__safe_softmax),
    BuiltinEntry('aten::_log_softmax', '_log_softmax(Tensor self, int dim, bool half_to_float) -> Tensor', jvp__log_softmax, 'derivatives.yaml:349', corrects_upstream="torch's log_softmax formula scales exp's saved output in place, so reverse mode through a forward_ad tangent of an input requiring grad raises; under an outer derivative this entry computes the same formula out of place", when=when__log_softmax),
    BuiltinEntry('aten::logsumexp', 'logsumexp(Tensor self, int[1] dim, bool keepdim=False) -> Tensor', jvp_logsumexp, 'derivatives.yaml:354', corrects_upstream="torch's logsumexp_jvp scales exp's saved output in place, so reverse mode through a forward_ad tangent of an input requiring grad raises; under an outer derivative this entry computes the same formula out of place", when=when_logsumexp),
    BuiltinEntry('aten::logcumsumexp', 'logcumsumexp(Tensor self, int dim) -> Tensor', jvp_logcumsumexp, 'derivatives.yaml:362', corrects_upstream="torch's logcumsumexp_jvp adds 1e-13 to running sums of exp(x - max x), which dominates them where x spreads over more than about 16 along the dim (half the tangent lost at x = [-30, 0]); this entry sums in log space, exactly"),
    BuiltinEntry('aten::glu', 'glu(Tensor self, int dim=-1) -> Tensor', jvp_glu, 'derivatives.yaml:368', corrects_upstream="torch's glu tangent is the glu_jvp kernel, which has no derivative, so reverse mode through it and forward-over-forward raise; under an outer derivative this entry computes it with differentiable ops", when=when_glu),
    BuiltinEntry('aten::hardsigmoid', 'hardsigmoid(Tensor self) -> Tensor', jvp_hardsigmoid, 'derivatives.yaml:373', corrects_upstream="torch's hardsigmoid tangent is the hardsigmoid_backward kernel, which has no derivative, so reverse mode through it and forward-over-forward raise; under an outer derivative this entry computes it with differentiable ops", when=when_hardsigmoid),
    BuiltinEntry('aten::_scaled_dot_product_flash_attention_for_cpu', '_scaled_dot_product_flash_attention_for_cpu(Tensor query, Tensor key, Tensor value, float dropout_p=0., bool is_causal=False, *, Tensor? attn_mask=None, float? scale=None) -> (Tensor output, Tensor logsumexp)', jvp__scaled_dot_product_flash_attention_for_cpu, 'derivatives.yaml:380'),
    BuiltinEntry('aten::_scaled_dot_product_flash_attention_for_cpu_backward', '_scaled_dot_product_flash_attention_for_cpu_backward(Tensor grad_out, Tensor query, Tensor key, Tensor value, Tensor out, Tensor logsumexp, float dropout_p, bool is_causal, *, Tensor? attn_mask=None, float? scale=None) -> (Tensor grad_query, Tensor grad_key, Tensor grad_value)', jvp__scaled_dot_product_flash_attention_for_cpu_backward, 'derivatives.yaml:383'),
    BuiltinEntry('aten::_scaled_dot_product_flash_attention', '_scaled_dot_product_flash_attention(Tensor query, Tensor key, Tensor value, float dropout_p=0., bool is_causal=False, bool return_debug_mask=False, *, float? scale=None) -> (Tensor output, Tensor logsumexp, Tensor cum_seq_q, Tensor cum_seq_k, SymInt max_q, SymInt max_k, Tensor rng_state, Tensor unused, Tensor debug_attn_mask)', jvp__scaled_dot_product_flash_attention, 'derivatives.yaml:388'),
    BuiltinEntry('aten::_scaled_dot_product_efficient_attention', '_scaled_dot_product_efficient_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_bias, bool compute_log_sumexp, float dropout_p=0., bool is_causal=False, *, float? scale=None) -> (Tensor output, Tensor log_sumexp, Tensor philox_seed, Tensor philox_offset)', jvp__scaled_dot_product_efficient_attention, 'derivatives.yaml:391'),
    BuiltinEntry('aten::_scaled_dot_product_cudnn_attention', '_scaled_dot_product_cudnn_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_bias, bool compute_log_sumexp, float dropout_p=0., bool is_causal=False, bool return_debug_mask=False, *, float? scale=None) -> (Tensor output, Tensor logsumexp, Tensor cum_seq_q, Tensor cum_seq_k, SymInt max_q, SymInt max_k, Tensor philox_seed, Tensor philox_offset, Tensor debug_attn_mask)', jvp__scaled_dot_product_cudnn_attention, 'derivatives.yaml:394'),
    BuiltinEntry('aten::_scaled_dot_product_fused_attention_overrideable', '_scaled_dot_product_fused_attention_overrideable(Tensor query, Tensor key, Tensor value, Tensor? attn_bias=None, float dropout_p=0., bool is_causal=False, bool return_debug_mask=False, *, float? scale=None) -> (Tensor output, Tensor logsumexp, Tensor cum_seq_q, Tensor cum_seq_k, SymInt max_q, SymInt max_k, Tensor philox_seed, Tensor philox_offset, Tensor debug_attn_mask)', jvp__scaled_dot_product_fused_attention_overrideable, 'derivatives.yaml:397'),
    BuiltinEntry('aten::_flash_attention_forward', '_flash_attention_forward(Tensor query, Tensor key, Tensor value, Tensor? cum_seq_q, Tensor? cum_seq_k, SymInt max_q, SymInt max_k, float dropout_p, bool is_causal, bool return_debug_mask, *, float? scale=None, SymInt? window_size_left=None, SymInt? window_size_right=None, Tensor? seqused_k=None, Tensor? alibi_slopes=None, Tensor? block_table=None, int? num_splits=None) -> (Tensor output, Tensor softmax_logsumexp, Tensor rng_state, Tensor unused, Tensor debug_attn_mask)', jvp__flash_attention_forward, 'derivatives.yaml:400'),
    BuiltinEntry('aten::_efficient_attention_forward', '_efficient_attention_forward(Tensor query, Tensor key, Tensor value, Tensor? bias, Tensor? cu_seqlens_q, Tensor? cu_seqlens_k, SymInt? max_seqlen_q, SymInt? max_seqlen_k, float dropout_p, int custom_mask_type, bool compute_log_sumexp=False, *, float? scale=None, Tensor? seqlen_k=None, int? window_size=None) -> (Tensor output, Tensor logsumexp, Tensor philox_seed, Tensor philox_offset, SymInt max_seqlen_batch_q, SymInt max_seqlen_batch_k)', jvp__efficient_attention_forward, 'derivatives.yaml:403'),
    BuiltinEntry('aten::_cudnn_attention_forward', '_cudnn_attention_forward(Tensor query, Tensor key, Tensor value, Tensor? attn_bias, Tensor? cum_seq_q, Tensor? cum_seq_k, SymInt max_q, SymInt max_k, bool compute_log_sumexp, float dropout_p=0., bool is_causal=False, bool return_debug_mask=False, *, float? scale=None) -> (Tensor output, Tensor logsumexp, Tensor cum_seq_q, Tensor cum_seq_k, SymInt max_q, SymInt max_k, Tensor philox_seed, Tensor philox_offset, Tensor debug_attn_mask)', jvp__cudnn_attention_forward, 'derivatives.yaml:406'),
    BuiltinEntry('aten::_masked_softmax', '_masked_softmax(Tensor self, Tensor mask, int? dim=None, int? mask_type=None) -> Tensor', jvp__masked_softmax, 'derivatives.yaml:409'),
    BuiltinEntry('aten::_native_multi_head_attention', '_native_multi_head_attention(Tensor query, Tensor key, Tensor value, int embed_dim, int num_head, Tensor qkv_weight, Tensor qkv_bias, Tensor proj_weight, Tensor proj_bias, Tensor? mask=None, bool need_weights=True, bool average_attn_weights=True, int? mask_type=None) -> (Tensor, Tensor)', jvp__native_multi_head_attention, 'derivatives.yaml:419'),
    BuiltinEntry('aten::_transformer_encoder_layer_fwd', '_transformer_encoder_layer_fwd(Tensor src, int embed_dim, int num_heads, Tensor qkv_weight, Tensor qkv_bias, Tensor proj_weight, Tensor proj_bias, bool use_gelu, bool norm_first, float eps, Tensor norm_weight_1, Tensor norm_bias_1, Tensor norm_weight_2, Tensor norm_bias_2, Tensor ffn_weight_1, Tensor ffn_bias_1, Tensor ffn_weight_2, Tensor ffn_bias_2, Tensor? mask=None, int? mask_type=None) -> Tensor', jvp__transformer_encoder_layer_fwd, 'derivatives.yaml:422'),
    BuiltinEntry('aten::_nested_tensor_from_mask', '_nested_tensor_from_mask(Tensor t, Tensor mask, bool mask_check=True) -> Tensor', jvp__nested_tensor_from_mask, 'derivatives.yaml:431'),
    BuiltinEntry('aten::to_padded_tensor', 'to_padded_tensor(Tensor self, float padding, SymInt[]? output_size=None) -> Tensor', jvp_to_padded_tensor, 'derivatives.yaml:434'),
    BuiltinEntry('aten::grid_sampler_2d', 'grid_sampler_2d(Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> Tensor', jvp_grid_sampler_2d, 'derivatives.yaml:441'),
    BuiltinEntry('aten::_grid_sampler_2d_cpu_fallback', '_grid_sampler_2d_cpu_fallback(Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> Tensor', jvp__grid_sampler_2d_cpu_fallback, 'derivatives.yaml:444'),
    BuiltinEntry('aten::grid_sampler_3d', 'grid_sampler_3d(Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> Tensor', jvp_grid_sampler_3d, 'derivatives.yaml:447'),
    BuiltinEntry('aten::_embedding_bag', '_embedding_bag(Tensor weight, Tensor indices, Tensor offsets, bool scale_grad_by_freq=False, int mode=0, bool sparse=False, Tensor? per_sample_weights=None, bool include_last_offset=False, int padding_idx=-1) -> (Tensor, Tensor, Tensor, Tensor)', jvp__embedding_bag, 'derivatives.yaml:450'),
    BuiltinEntry('aten::_embedding_bag_forward_only', '_embedding_bag_forward_only(Tensor weight, Tensor indices, Tensor offsets, bool scale_grad_by_freq=False, int mode=0, bool sparse=False, Tensor? per_sample_weights=None, bool include_last_offset=False, int padding_idx=-1) -> (Tensor, Tensor, Tensor, Tensor)', jvp__embedding_bag_forward_only, 'derivatives.yaml:456'),
    BuiltinEntry('aten::soft_margin_loss_backward', 'soft_margin_loss_backward(Tensor grad_output, Tensor self, Tensor target, int reduction) -> Tensor', jvp_soft_margin_loss_backward, 'derivatives.yaml:468'),
    BuiltinEntry('aten::huber_loss_backward', 'huber_loss_backward(Tensor grad_output, Tensor self, Tensor target, int reduction, float delta) -> Tensor', jvp_huber_loss_backward, 'derivatives.yaml:474'),
    BuiltinEntry('aten::native_dropout_backward', 'native_dropout_backward(Tensor grad_output, Tensor mask, float scale) -> Tensor', jvp_native_dropout_backward, 'derivatives.yaml:480'),
    BuiltinEntry('aten::_cdist_backward', '_cdist_backward(Tensor grad, Tensor x1, Tensor x2, float p, Tensor cdist) -> Tensor', jvp__cdist_backward, 'derivatives.yaml:485'),
    BuiltinEntry('aten::_pdist_backward', '_pdist_backward(Tensor grad, Tensor self, float p, Tensor pdist) -> Tensor', jvp__pdist_backward, 'derivatives.yaml:488'),
    BuiltinEntry('aten::grid_sampler_2d_backward', 'grid_sampler_2d_backward(Tensor grad_output, Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners, bool[2] output_mask) -> (Tensor, Tensor)', jvp_grid_sampler_2d_backward, 'derivatives.yaml:493'),
    BuiltinEntry('aten::grid_sampler_3d_backward', 'grid_sampler_3d_backward(Tensor grad_output, Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners, bool[2] output_mask) -> (Tensor, Tensor)', jvp_grid_sampler_3d_backward, 'derivatives.yaml:496'),
    BuiltinEntry('aten::_grid_sampler_2d_cpu_fallback_backward', '_grid_sampler_2d_cpu_fallback_backward(Tensor grad_output, Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> (Tensor, Tensor)', jvp__grid_sampler_2d_cpu_fallback_backward, 'derivatives.yaml:500'),
    BuiltinEntry('aten::_embedding_bag_dense_backward', '_embedding_bag_dense_backward(Tensor grad, Tensor indices, Tensor offset2bag, Tensor bag_size, Tensor maximum_indices, SymInt num_weights, bool scale_grad_by_freq, int mode, Tensor? per_sample_weights, int padding_idx=-1) -> Tensor', jvp__embedding_bag_dense_backward, 'derivatives.yaml:505'),
    BuiltinEntry('aten::_embedding_bag_backward', '_embedding_bag_backward(Tensor grad, Tensor indices, Tensor offsets, Tensor offset2bag, Tensor bag_size, Tensor maximum_indices, SymInt num_weights, bool scale_grad_by_freq, int mode, bool sparse, Tensor? per_sample_weights, int padding_idx=-1) -> Tensor', jvp__embedding_bag_backward, 'derivatives.yaml:511'),
    BuiltinEntry('aten::_embedding_bag_per_sample_weights_backward', '_embedding_bag_per_sample_weights_backward(Tensor grad, Tensor weight, Tensor indices, Tensor offsets, Tensor offset2bag, int mode, int padding_idx=-1) -> Tensor', jvp__embedding_bag_per_sample_weights_backward, 'derivatives.yaml:518'),
    BuiltinEntry('aten::multi_margin_loss_backward', 'multi_margin_loss_backward(Tensor grad_output, Tensor self, Tensor target, Scalar p, Scalar margin, Tensor? weight=None, int reduction=1) -> Tensor', jvp_multi_margin_loss_backward, 'derivatives.yaml:527'),
    BuiltinEntry('aten::multilabel_margin_loss_backward', 'multilabel_margin_loss_backward(Tensor grad_output, Tensor self, Tensor target, int reduction, Tensor is_target) -> Tensor', jvp_multilabel_margin_loss_backward, 'derivatives.yaml:536'),
    BuiltinEntry('aten::hardsigmoid_backward', 'hardsigmoid_backward(Tensor grad_output, Tensor self) -> Tensor', jvp_hardsigmoid_backward, 'derivatives.yaml:544'),
    BuiltinEntry('aten::_ctc_loss_backward', '_ctc_loss_backward(Tensor grad, Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, Tensor neg_log_likelihood, Tensor log_alpha, int blank, bool zero_infinity=False) -> Tensor', jvp__ctc_loss_backward, 'derivatives.yaml:551'),
    BuiltinEntry('aten::_ctc_loss_backward.Tensor', '_ctc_loss_backward.Tensor(Tensor grad, Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, Tensor neg_log_likelihood, Tensor log_alpha, int blank, bool zero_infinity=False) -> Tensor', jvp__ctc_loss_backward_Tensor, 'derivatives.yaml:554'),
    BuiltinEntry('aten::_segment_reduce_backward', '_segment_reduce_backward(Tensor grad, Tensor output, Tensor data, str reduce, *, Tensor? lengths=None, Tensor? offsets=None, int axis=0, Scalar? initial=None) -> Tensor', jvp__segment_reduce_backward, 'derivatives.yaml:559'),
    BuiltinEntry('aten::igamma', 'igamma(Tensor self, Tensor other) -> Tensor', jvp_igamma, 'derivatives.yaml:570'),
    BuiltinEntry('aten::igammac', 'igammac(Tensor self, Tensor other) -> Tensor', jvp_igammac, 'derivatives.yaml:575'),
    BuiltinEntry('aten::special_zeta', 'special_zeta(Tensor self, Tensor other) -> Tensor', jvp_special_zeta, 'derivatives.yaml:580'),
    BuiltinEntry('aten::special_zeta.self_scalar', 'special_zeta.self_scalar(Scalar self, Tensor other) -> Tensor', jvp_special_zeta_self_scalar, 'derivatives.yaml:585'),
    BuiltinEntry('aten::_standard_gamma', '_standard_gamma(Tensor self, Generator? generator=None) -> Tensor', jvp__standard_gamma, 'derivatives.yaml:590'),
    BuiltinEntry('aten::fake_quantize_per_tensor_affine_cachemask', 'fake_quantize_per_tensor_affine_cachemask(Tensor self, float scale, int zero_point, int quant_min, int quant_max) -> (Tensor output, Tensor mask)', jvp_fake_quantize_per_tensor_affine_cachemask, 'derivatives.yaml:599'),
    BuiltinEntry('aten::_fake_quantize_per_tensor_affine_cachemask_tensor_qparams', '_fake_quantize_per_tensor_affine_cachemask_tensor_qparams(Tensor self, Tensor scale, Tensor zero_point, Tensor fake_quant_enabled, int quant_min, int quant_max) -> (Tensor output, Tensor mask)', jvp__fake_quantize_per_tensor_affine_cachemask_tensor_qparams, 'derivatives.yaml:603'),
    BuiltinEntry('aten::fake_quantize_per_channel_affine_cachemask', 'fake_quantize_per_channel_affine_cachemask(Tensor self, Tensor scale, Tensor zero_point, int axis, int quant_min, int quant_max) -> (Tensor output, Tensor mask)', jvp_fake_quantize_per_channel_affine_cachemask, 'derivatives.yaml:610'),
    BuiltinEntry('aten::_fake_quantize_learnable_per_tensor_affine', '_fake_quantize_learnable_per_tensor_affine(Tensor self, Tensor scale, Tensor zero_point, int quant_min, int quant_max, float grad_factor=1.) -> Tensor', jvp__fake_quantize_learnable_per_tensor_affine, 'derivatives.yaml:619'),
    BuiltinEntry('aten::_fake_quantize_learnable_per_channel_affine', '_fake_quantize_learnable_per_channel_affine(Tensor self, Tensor scale, Tensor zero_point, int axis, int quant_min, int quant_max, float grad_factor=1.) -> Tensor', jvp__fake_quantize_learnable_per_channel_affine, 'derivatives.yaml:622'),
    BuiltinEntry('aten::slow_conv_transpose2d', 'slow_conv_transpose2d(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias=None, SymInt[2] stride=[1, 1], SymInt[2] padding=[0, 0], SymInt[2] output_padding=[0, 0], SymInt[2] dilation=[1, 1]) -> Tensor', jvp_slow_conv_transpose2d, 'derivatives.yaml:627'),
    BuiltinEntry('aten::slow_conv_transpose3d', 'slow_conv_transpose3d(Tensor self, Tensor weight, SymInt[3] kernel_size, Tensor? bias=None, SymInt[3] stride=[1, 1, 1], SymInt[3] padding=[0, 0, 0], SymInt[3] output_padding=[0, 0, 0], SymInt[3] dilation=[1, 1, 1]) -> Tensor', jvp_slow_conv_transpose3d, 'derivatives.yaml:633'),
    BuiltinEntry('aten::_slow_conv2d_forward', '_slow_conv2d_forward(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias, SymInt[2] stride, SymInt[2] padding) -> Tensor', jvp__slow_conv2d_forward, 'derivatives.yaml:639'),
    BuiltinEntry('aten::slow_conv3d_forward', 'slow_conv3d_forward(Tensor self, Tensor weight, SymInt[3] kernel_size, Tensor? bias, SymInt[3] stride, SymInt[3] padding) -> Tensor', jvp_slow_conv3d_forward, 'derivatives.yaml:645'),
    BuiltinEntry('aten::slow_conv_dilated2d', 'slow_conv_dilated2d(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias=None, SymInt[2] stride=[1, 1], SymInt[2] padding=[0, 0], SymInt[2] dilation=[1, 1]) -> Tensor', jvp_slow_conv_dilated2d, 'derivatives.yaml:651'),
    BuiltinEntry('aten::slow_conv_dilated3d', 'slow_conv_dilated3d(Tensor self, Tensor weight, SymInt[3] kernel_size, Tensor? bias=None, SymInt[3] stride=[1, 1, 1], SymInt[3] padding=[0, 0, 0], SymInt[3] dilation=[1, 1, 1]) -> Tensor', jvp_slow_conv_dilated3d, 'derivatives.yaml:657'),
    BuiltinEntry('aten::_conv_depthwise2d', '_conv_depthwise2d(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias, SymInt[2] stride, SymInt[2] padding, SymInt[2] dilation) -> Tensor', jvp__conv_depthwise2d, 'derivatives.yaml:666'),
    BuiltinEntry('aten::conv_depthwise3d', 'conv_depthwise3d(Tensor self, Tensor weight, SymInt[3] kernel_size, Tensor? bias, SymInt[3] stride, SymInt[3] padding, SymInt[3] dilation) -> Tensor', jvp_conv_depthwise3d, 'derivatives.yaml:672'),
    BuiltinEntry('aten::conv_tbc', 'conv_tbc(Tensor self, Tensor weight, Tensor bias, int pad=0) -> Tensor', jvp_conv_tbc, 'derivatives.yaml:679'),
    BuiltinEntry('aten::_slow_conv2d_backward.output_mask', '_slow_conv2d_backward.output_mask(Tensor grad_output, Tensor self, Tensor weight, SymInt[2] kernel_size, SymInt[2] stride, SymInt[2] padding, bool[3] output_mask) -> (Tensor grad_input, Tensor grad_weight, Tensor grad_bias)', jvp__slow_conv2d_backward_output_mask, 'derivatives.yaml:687'),
    BuiltinEntry('aten::_weight_norm_interface', '_weight_norm_interface(Tensor v, Tensor g, int dim=0) -> (Tensor, Tensor)', jvp__weight_norm_interface, 'derivatives.yaml:693'),
    BuiltinEntry('aten::rrelu_with_noise_functional', 'rrelu_with_noise_functional(Tensor self, Tensor noise, Scalar lower=0.125, Scalar upper=0.33333333333333331, bool training=False, Generator? generator=None) -> (Tensor, Tensor noise_out)', jvp_rrelu_with_noise_functional, 'derivatives.yaml:700', output_differentiability=(True, False)),
    BuiltinEntry('aten::_foreach_mm', '_foreach_mm(Tensor[] self, Tensor[] mat2) -> Tensor[]', jvp__foreach_mm, 'derivatives.yaml:706'),
    BuiltinEntry('aten::_foreach_pow.ScalarAndTensor', '_foreach_pow.ScalarAndTensor(Scalar self, Tensor[] exponent) -> Tensor[]', jvp__foreach_pow_ScalarAndTensor, 'derivatives.yaml:709'),
    BuiltinEntry('aten::_grouped_mm', '_grouped_mm(Tensor self, Tensor mat2, Tensor? offs=None, Tensor? bias=None, ScalarType? out_dtype=None) -> Tensor', jvp__grouped_mm, 'derivatives.yaml:716'),
    BuiltinEntry('aten::_pack_padded_sequence', '_pack_padded_sequence(Tensor input, Tensor lengths, bool batch_first) -> (Tensor, Tensor)', jvp__pack_padded_sequence, 'derivatives.yaml:727'),
    BuiltinEntry('aten::_fused_dropout', '_fused_dropout(Tensor self, float p, Generator? generator=None) -> (Tensor, Tensor)', jvp__fused_dropout, 'derivatives.yaml:737'),
    BuiltinEntry('aten::_thnn_fused_lstm_cell', '_thnn_fused_lstm_cell(Tensor input_gates, Tensor hidden_gates, Tensor cx, Tensor? input_bias=None, Tensor? hidden_bias=None) -> (Tensor, Tensor, Tensor)', jvp__thnn_fused_lstm_cell, 'derivatives.yaml:742', output_differentiability=(True, True, False)),
    BuiltinEntry('aten::mkldnn_rnn_layer', 'mkldnn_rnn_layer(Tensor input, Tensor weight0, Tensor weight1, Tensor weight2, Tensor weight3, Tensor hx_, Tensor cx_, bool reverse, int[] batch_sizes, int mode, int hidden_size, int num_layers, bool has_biases, bool bidirectional, bool batch_first, bool train) -> (Tensor, Tensor, Tensor, Tensor)', jvp_mkldnn_rnn_layer, 'derivatives.yaml:750'),
    BuiltinEntry('aten::_thnn_fused_gru_cell', '_thnn_fused_gru_cell(Tensor input_gates, Tensor hidden_gates, Tensor hx, Tensor? input_bias=None, Tensor? hidden_bias=None) -> (Tensor, Tensor)', jvp__thnn_fused_gru_cell, 'derivatives.yaml:754'),
    BuiltinEntry('aten::_sparse_addmm', '_sparse_addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor', jvp__sparse_addmm, 'derivatives.yaml:763'),
    BuiltinEntry('aten::_sparse_mm_reduce_impl', '_sparse_mm_reduce_impl(Tensor self, Tensor other, str reduce) -> (Tensor, Tensor)', jvp__sparse_mm_reduce_impl, 'derivatives.yaml:771'),
    BuiltinEntry('aten::_ctc_loss', '_ctc_loss(Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)', jvp__ctc_loss, 'derivatives.yaml:784'),
    BuiltinEntry('aten::_ctc_loss.Tensor', '_ctc_loss.Tensor(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)', jvp__ctc_loss_Tensor, 'derivatives.yaml:787'),
    BuiltinEntry('aten::segment_reduce', 'segment_reduce(Tensor data, str reduce, *, Tensor? lengths=None, Tensor? indices=None, Tensor? offsets=None, int axis=0, bool unsafe=False, Scalar? initial=None) -> Tensor', jvp_segment_reduce, 'derivatives.yaml:790'),
)
