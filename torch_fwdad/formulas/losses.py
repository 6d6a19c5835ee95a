"""Losses: multi-class and multi-label margin losses.

Both follow their backward kernels: a hinge term counts only where it is strictly
positive (the derivative at the kink is 0), and `weight` is not differentiable
(PyTorch refuses requires_grad on it; a tangent on it is ignored, as nll_loss's is).
"""

from __future__ import annotations

import torch

__all__ = ["multi_margin_loss_jvp", "multilabel_margin_loss_jvp", "multi_margin_loss_second_derivative"]

_NONE, _MEAN, _SUM = 0, 1, 2  # at::Reduction


def _reduce(per_sample: torch.Tensor, reduction: int, result: torch.Tensor) -> torch.Tensor:
    if reduction == _NONE:
        return per_sample.reshape(result.shape)
    total = per_sample.sum()
    if reduction == _MEAN and per_sample.numel() > 0:
        total = total / per_sample.numel()
    return total


def _margin_hinges(self_p, self_t, target, margin):
    """Scores and tangents as [N, C] rows, labels [N, 1], hinges margin - x_y + x_j and the
    mask of j ≠ y: shared by multi_margin_loss's tangent and its backward's."""
    classes = self_p.shape[-1] if self_p.dim() > 0 else 1
    x = self_p.reshape(-1, classes)
    y = target.reshape(-1, 1)
    hinge = margin - x.gather(1, y) + x
    others = torch.ones_like(hinge, dtype=torch.bool).scatter(1, y, False)
    return classes, x, self_t.reshape(-1, classes), y, hinge, others


def multi_margin_loss_jvp(self_t, self_p, target, p, margin, weight, reduction: int, result):
    """Tangent of multi_margin_loss(x [N, C] or [C], target [N] or []).

    loss_n = Σ_{j≠y} w[y]·max(0, margin - x_y + x_j)^p / C, for p in {1, 2}.
    """
    classes, x, t, y, hinge, others = _margin_hinges(self_p, self_t, target, margin)
    active = (hinge > 0) & others
    slope = active.to(x.dtype) if float(p) == 1 else 2 * torch.where(active, hinge, torch.zeros_like(hinge))
    per_sample = (slope * (t - t.gather(1, y))).sum(1) / classes
    if weight is not None:
        per_sample = per_sample * weight[y.reshape(-1)]
    return _reduce(per_sample, reduction, result)


def multilabel_margin_loss_jvp(self_t, self_p, target, reduction: int, is_target, output):
    """Tangent of multilabel_margin_loss_forward(x [N, C] or [C], target like x).

    loss_n = Σ_{labels j} Σ_{i not a label} max(0, 1 - x_{y_j} + x_i) / C, the labels being
    target's entries before its first -1 (a repeated label counts as often as it appears).
    """
    classes = self_p.shape[-1] if self_p.dim() > 0 else 1
    x = self_p.reshape(-1, classes)
    t = self_t.reshape(-1, classes)
    labels = target.reshape(-1, classes)
    listed = (labels >= 0).cummin(1).values  # entries before the first -1
    labels = labels.clamp_min(0)
    x_label = x.gather(1, labels)
    hinge = 1 - x_label.unsqueeze(2) + x.unsqueeze(1)  # [N, label j, class i]
    not_label = is_target.reshape(-1, classes) == 0
    active = (hinge > 0) & listed.unsqueeze(2) & not_label.unsqueeze(1)
    active = active.to(x.dtype)
    per_sample = ((active.sum(1) * t).sum(1) - (active.sum(2) * t.gather(1, labels)).sum(1)) / classes
    return _reduce(per_sample, reduction, output)


def multi_margin_loss_second_derivative(self_t, grad_output, self_p, target, p, margin, weight, reduction: int):
    """d/dself of multi_margin_loss_backward along self_t (forward-over-reverse).

    The backward kernel's gradient is g·w[y]·slope_j at each active class j ≠ y (hinge
    h_j = margin - x_y + x_j > 0) and minus their sum at y, with g = 1/C (1/(N·C) for a
    mean) and slope 1 (p = 1) or 2·h_j (p = 2). For p = 1 it is piecewise constant in
    self: no term. For p = 2 the tangent of 2·h_j is 2·(t_j - t_y).
    """
    if float(p) == 1:
        return None
    classes, x, t, y, hinge, others = _margin_hinges(self_p, self_t, target, margin)
    active = (hinge > 0) & others
    scale = 2.0 / classes / (x.shape[0] if reduction == _MEAN and x.shape[0] > 0 else 1)
    per_class = scale * active.to(x.dtype) * (t - t.gather(1, y))
    if weight is not None:
        per_class = per_class * weight[y]
    per_class = per_class - (~others).to(x.dtype) * per_class.sum(1, keepdim=True)
    return (per_class * grad_output.reshape(-1, 1)).reshape(self_p.shape)
