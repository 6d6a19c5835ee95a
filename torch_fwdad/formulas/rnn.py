"""Fused RNN cells (CUDA kernels of nn.LSTMCell / nn.GRUCell): the cell math from its gates.

The kernels take the two matrix products already done (input_gates = x @ w_ihᵀ,
hidden_gates = h @ w_hhᵀ) and optional biases. The tangents are those of the unfused
cell PyTorch runs on CPU (and differentiates in _thnn_differentiable_*_cell_backward),
written with device-agnostic ops, recomputing the gates rather than reading the
kernel's workspace so the rule stays differentiable for outer derivatives.
"""

from __future__ import annotations

import torch

from ._common import zeros_if_none

__all__ = ["fused_lstm_cell_jvp", "fused_gru_cell_jvp", "mkldnn_lstm_layer_jvp", "pack_padded_sequence_jvp"]


def _sum_defined(*tensors):
    """Sum of the tensors that are not None (biases broadcast over the batch), or None."""
    defined = [t for t in tensors if t is not None]
    return sum(defined[1:], defined[0]) if defined else None


def _gates_tangent(gates, *tangents):
    """Tangent of the summed pre-activations, batch-shaped even when only a bias carries one."""
    return zeros_if_none(_sum_defined(*tangents), gates).expand_as(gates)


def fused_lstm_cell_jvp(input_gates, hidden_gates, cx, input_bias, hidden_bias,
                        input_gates_t, hidden_gates_t, cx_t, input_bias_t, hidden_bias_t, cy):
    """Tangents of (hy, cy); gate order i, f, g, o along dim 1, as the kernel's."""
    gates = _sum_defined(input_gates, hidden_gates, input_bias, hidden_bias)
    i, f, g, o = gates.chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    gates_t = _gates_tangent(gates, input_gates_t, hidden_gates_t, input_bias_t, hidden_bias_t)
    i_t, f_t, g_t, o_t = gates_t.chunk(4, 1)
    cy_t = i * (1 - i) * i_t * g + i * (1 - g * g) * g_t + f * (1 - f) * f_t * cx
    if cx_t is not None:
        cy_t = cy_t + f * cx_t
    tanh_cy = cy.tanh()
    hy_t = o * (1 - o) * o_t * tanh_cy + o * (1 - tanh_cy * tanh_cy) * cy_t
    return hy_t, cy_t


def fused_gru_cell_jvp(input_gates, hidden_gates, hx, input_bias, hidden_bias,
                       input_gates_t, hidden_gates_t, hx_t, input_bias_t, hidden_bias_t):
    """Tangent of hy = (1 - z) * n + z * hx; gate order r, z, n along dim 1, as the kernel's.

    The new gate reads the hidden part of its pre-activation through the reset gate,
    n = tanh(i_n + r * h_n), so the input and hidden gates are kept apart.
    """
    i_r, i_z, i_n = _sum_defined(input_gates, input_bias).chunk(3, 1)
    h_r, h_z, h_n = _sum_defined(hidden_gates, hidden_bias).chunk(3, 1)
    r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    it_r, it_z, it_n = _gates_tangent(input_gates, input_gates_t, input_bias_t).chunk(3, 1)
    ht_r, ht_z, ht_n = _gates_tangent(hidden_gates, hidden_gates_t, hidden_bias_t).chunk(3, 1)
    r_t = r * (1 - r) * (it_r + ht_r)
    z_t = z * (1 - z) * (it_z + ht_z)
    n_t = (1 - n * n) * (it_n + r_t * h_n + r * ht_n)
    hy_t = (1 - z) * n_t + z_t * (hx - n)
    return hy_t if hx_t is None else hy_t + z * hx_t


def pack_padded_sequence_jvp(input_t, lengths, batch_first):
    """Tangent of _pack_padded_sequence's data: the op is linear in input, so it packs
    the tangent with the same lengths (batch_sizes depends on lengths only)."""
    return torch.ops.aten._pack_padded_sequence(input_t, lengths, batch_first)[0]


_MODE_LSTM = 2  # mkldnn_rnn_layer's mode (RNN_RELU 0, RNN_TANH 1, LSTM 2, GRU 3)


def mkldnn_lstm_layer_jvp(input, w_ih, w_hh, b_ih, b_hh, hx, cx, input_t, w_ih_t, w_hh_t, b_ih_t, b_hh_t,
                          hx_t, cx_t, reverse, batch_sizes, mode, has_biases, output):
    """Tangents of (output, hy, cy) of one direction of one layer of the float32 CPU LSTM.

    nn.LSTM hands the kernel a time-major input (T, B, I), whatever batch_first says,
    and runs it backwards in time when `reverse`. The recurrence is the LSTM cell's
    (gates i, f, g, o, as fused_lstm_cell_jvp), walked step by step with the primal
    states recomputed; without biases the kernel receives the weights again in their
    place and ignores them.
    """
    if mode != _MODE_LSTM or len(batch_sizes) != 0:
        raise NotImplementedError(
            f"torch_fwdad: mkldnn_rnn_layer's forward rule covers the dense LSTM (mode 2) that nn.LSTM "
            f"reaches; got mode {mode} with {len(batch_sizes)} batch sizes")
    if not has_biases:
        b_ih = b_hh = b_ih_t = b_hh_t = None
    steps = range(input.shape[0] - 1, -1, -1) if reverse else range(input.shape[0])
    input_gates = _sum_defined(torch.nn.functional.linear(input, w_ih), b_ih, b_hh)
    input_gates_t = _sum_defined(None if input_t is None else torch.nn.functional.linear(input_t, w_ih),
                                 None if w_ih_t is None else torch.nn.functional.linear(input, w_ih_t), b_ih_t, b_hh_t)
    h, c = hx, cx
    h_t, c_t = hx_t, cx_t
    outputs_t = [None] * input.shape[0]
    for step in steps:
        hidden_gates = h @ w_hh.T
        hidden_gates_t = _sum_defined(None if h_t is None else h_t @ w_hh.T, None if w_hh_t is None else h @ w_hh_t.T)
        gates = input_gates[step] + hidden_gates
        c_next = _cell_state(gates, c)
        h_t, c_t = fused_lstm_cell_jvp(input_gates[step], hidden_gates, c, None, None,
                                       None if input_gates_t is None else input_gates_t.expand_as(input_gates)[step],
                                       hidden_gates_t, c_t, None, None, c_next)
        h, c = _hidden_state(gates, c_next), c_next
        outputs_t[step] = h_t
    return torch.stack(outputs_t), h_t, c_t


def _cell_state(gates, c):
    i, f, g, _ = gates.chunk(4, 1)
    return f.sigmoid() * c + i.sigmoid() * g.tanh()


def _hidden_state(gates, c_next):
    return gates.chunk(4, 1)[3].sigmoid() * c_next.tanh()
