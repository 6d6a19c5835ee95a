"""F.linear_cross_entropy's chunked path: two torch.library custom ops (torch_nn::...).

Custom ops have no forward mode (their tangent silently vanishes), so this module gives
them rules through register_jvp: `register_rules()`, which `import torch_fwdad` calls
(torch_fwdad/__init__.py, the one place that installs anything at import).
The loss tangent is computed from the inputs with differentiable ops, chunked over the
batch like the primal, so it can be differentiated again.

The chunked op also returns the gradients it precomputes for its backward; they get no
tangent. Forward-over-reverse (Hessian-vector products) would need them, but the op's
backward reads detached copies saved at forward time, so no tangent could reach it:
instead the engine refuses autograd.grad(create_graph=True) inside a dual level with an
error (tests/test_linear_cross_entropy.py), and torch.func.grad is refused by PyTorch
itself. Reverse-over-reverse (autograd.functional.hessian) returns zeros upstream.
"""

from __future__ import annotations

import torch

from ..engine import register_jvp

__all__: list[str] = []  # its rules go through register_jvp: derivatives.yaml calls nothing here


def linear_cross_entropy_tangent(input, input_t, linear_weight, linear_weight_t, target, linear_bias, linear_bias_t,
                                 weight, ignore_index, batch_chunk_size, reduction):
    """Tangent of cross_entropy(input @ linear_weightᵀ + bias, target) (no label smoothing).

    Per sample: w_y (softmax(z)·ż - ż_y), with ż the tangent of the logits; ignored
    targets give 0; 'mean' divides by the summed class weights of the kept targets.
    Class weights are not differentiable (as in cross_entropy).
    """
    kept = target != ignore_index
    safe_target = target.where(kept, 0)
    sample_weight = kept.to(input.dtype) if weight is None else weight[safe_target] * kept
    per_sample = []
    for start in range(0, input.shape[0], max(batch_chunk_size, 1)):
        rows = slice(start, start + batch_chunk_size)
        logits = input[rows] @ linear_weight.mT
        logits = logits if linear_bias is None else logits + linear_bias
        logits_t = _logits_tangent(input[rows], None if input_t is None else input_t[rows],
                                   linear_weight, linear_weight_t, linear_bias_t)
        logits_t = torch.zeros_like(logits) if logits_t is None else logits_t.expand_as(logits)
        expected = (logits.softmax(-1) * logits_t).sum(-1)
        picked = logits_t.gather(-1, safe_target[rows].unsqueeze(-1)).squeeze(-1)
        per_sample.append(sample_weight[rows] * (expected - picked))
    tangent = torch.cat(per_sample) if per_sample else input.new_zeros(0)
    if reduction == "none":
        return tangent
    total = tangent.sum()
    return total / sample_weight.sum() if reduction == "mean" else total


def _logits_tangent(x, x_t, w, w_t, b_t):
    terms = [t for t in (x_t @ w.mT if x_t is not None else None,
                         x @ w_t.mT if w_t is not None else None,
                         b_t if b_t is not None else None) if t is not None]
    return sum(terms[1:], terms[0]) if terms else None


def _chunked_rule(primals, tangents, output):
    (input, linear_weight, target, linear_bias, weight, reduction, ignore_index, _smoothing, chunk, *_) = primals
    input_t, linear_weight_t, _, linear_bias_t, _, *_ = tangents
    loss_t = linear_cross_entropy_tangent(input, input_t, linear_weight, linear_weight_t, target, linear_bias, linear_bias_t,
                                          weight, ignore_index, chunk, reduction)
    # the precomputed gradients (outputs 1-3) get no tangent: see the module docstring
    return (loss_t.reshape(output[0].shape), None, None, None)


def _no_reduction_rule(primals, tangents, output):
    input, linear_weight, target, linear_bias, weight, ignore_index, chunk, *_ = primals
    input_t, linear_weight_t, _, linear_bias_t, *_ = tangents
    return linear_cross_entropy_tangent(input, input_t, linear_weight, linear_weight_t, target, linear_bias, linear_bias_t,
                                        weight, ignore_index, chunk, "none").reshape(output.shape)


_registered = False


def register_rules() -> None:
    """Register the rules of both custom ops; called by torch_fwdad/__init__.py (again on
    importlib.reload(torch_fwdad), when they are already there)."""
    global _registered
    if _registered:
        return
    _registered = True
    try:  # the ops exist from torch 2.13; F.linear_cross_entropy imports them lazily
        import torch.nn.modules.linear_cross_entropy  # noqa: F401
    except ImportError:
        return
    register_jvp("torch_nn::_linear_cross_entropy_batch_chunked", _chunked_rule,
                 _origin="torch_fwdad/formulas/linear_cross_entropy.py")
    register_jvp("torch_nn::_linear_cross_entropy_batch_chunked_no_reduction", _no_reduction_rule,
                 _origin="torch_fwdad/formulas/linear_cross_entropy.py")
