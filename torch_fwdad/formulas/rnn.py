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
    and runs it backwards in time when `reverse`; without biases the kernel receives the
    weights again in their place and ignores them. The kernel's output holds every
    hidden state, so every step's gates come from two matrix products over the whole
    sequence; only the cell state (elementwise) and the tangent's own recurrence through
    w_hh are walked step by step. Gate order i, f, g, o, as fused_lstm_cell_jvp.
    """
    if mode != _MODE_LSTM or len(batch_sizes) != 0:
        raise NotImplementedError(
            f"torch_fwdad: mkldnn_rnn_layer's forward rule covers the dense LSTM (mode 2) that nn.LSTM "
            f"reaches; got mode {mode} with {len(batch_sizes)} batch sizes")
    if not has_biases:
        b_ih = b_hh = b_ih_t = b_hh_t = None
    steps = list(range(input.shape[0] - 1, -1, -1) if reverse else range(input.shape[0]))
    if not steps:
        return torch.zeros_like(output), zeros_if_none(hx_t, hx), zeros_if_none(cx_t, cx)
    linear = torch.nn.functional.linear
    # the hidden state each step reads: hx first, then the previous step's output
    h_prev = torch.cat([output[1:], hx[None]]) if reverse else torch.cat([hx[None], output[:-1]])
    i, f, g, o = _sum_defined(linear(input, w_ih), linear(h_prev, w_hh), b_ih, b_hh).chunk(4, -1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c_prev, c_all = _cell_states(i * g, f, cx, steps)
    tanh_c = c_all.tanh()
    # gates' tangent = known_t + h_t(previous step) @ w_hhᵀ; all but the recurrence up front
    known_t = _sum_defined(None if input_t is None else linear(input_t, w_ih),
                           None if w_ih_t is None else linear(input, w_ih_t),
                           None if w_hh_t is None else linear(h_prev, w_hh_t), b_ih_t, b_hh_t)
    known_t = torch.zeros_like(output).repeat(1, 1, 4) if known_t is None else known_t.expand(*output.shape[:2], -1)
    # c_t = i'g + i g' + f'c_prev + f c'_prev and h_t = o' tanh c + o (1 - tanh² c) c_t,
    # with i' = i (1 - i) gates_t[i] (and so on): per gate, one coefficient times gates_t
    cell_coefficients = torch.cat([i * (1 - i) * g, f * (1 - f) * c_prev, (1 - g * g) * i], -1)
    out_coefficient, cell_to_hidden = o * (1 - o) * tanh_c, o * (1 - tanh_c * tanh_c)
    hidden = w_hh.shape[1]
    h_t, c_t = hx_t, cx_t
    outputs_t = [None] * len(steps)
    for step in steps:
        gates_t = known_t[step] if h_t is None else torch.addmm(known_t[step], h_t, w_hh.T)
        c_step_t = (cell_coefficients[step] * gates_t[:, :3 * hidden]).unflatten(-1, (3, hidden)).sum(-2)
        c_t = c_step_t if c_t is None else torch.addcmul(c_step_t, f[step], c_t)
        h_t = torch.addcmul(out_coefficient[step] * gates_t[:, 3 * hidden:], cell_to_hidden[step], c_t)
        outputs_t[step] = h_t
    return torch.stack(outputs_t), h_t, c_t


def _cell_states(update, forget, cx, steps):
    """(previous cell state, cell state) at every step of c = forget * c_prev + update."""
    c = cx
    previous, states = [None] * len(steps), [None] * len(steps)
    for step in steps:
        previous[step] = c
        c = states[step] = torch.addcmul(update[step], forget[step], c)
    return torch.stack(previous), torch.stack(states)
