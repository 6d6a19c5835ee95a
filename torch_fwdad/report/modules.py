"""Part (c) of the report: every torch.nn module with parameters, four ways of taking a JVP.

- jvp_input: torch.func.jvp w.r.t. the inputs, train mode, parameters requiring grad;
- jvp_params: torch.func.jvp w.r.t. the parameters (functional_call), train mode;
- eval_no_grad: eval mode under torch.no_grad(), parameters not requiring grad, tangents on
  inputs and parameters: the inference fast paths (aten::_transformer_encoder_layer_fwd,
  aten::_native_multi_head_attention, aten::_nested_tensor_from_mask) run only here;
  through torch.func.jvp, or forward_ad where the case says so (torch.func cannot wrap
  the nested tensor of nn.TransformerEncoder's padding-mask path);
- forward_ad: torch.autograd.forward_ad, make_dual on the inputs and on the parameters
  (which require grad), unpack_dual on the outputs.

A module passes a column when every output tangent matches central differences of the
module in float64 along the same random direction; a float32 case (the mkldnn LSTM) is
run in float32 and judged against its float64 copy. The modules are data:
torch_fwdad/testing/modules.py.
"""

from __future__ import annotations

import contextlib

import torch
import torch.autograd.forward_ad as fwAD
from torch import nn
from torch.autograd.gradcheck import GradcheckError
from torch.utils._pytree import tree_leaves

from torch_fwdad.testing.checks import FD_EPS, FD_TOL
from torch_fwdad.testing.modules import MODULE_CASES, ModuleCase
from torch_fwdad.testing.second_order import OpsSeen

from .status import EXCLUDED, PASS

COLUMNS = ("jvp_input", "jvp_params", "eval_no_grad", "forward_ad")
COLUMN_TITLES = {"jvp_input": "jvp wrt input", "jvp_params": "jvp wrt params", "eval_no_grad": "eval + no_grad",
                 "forward_ad": "forward_ad"}
# column -> (tangents on inputs, tangents on parameters, eval mode + no_grad)
SETUPS = {"jvp_input": (True, False, False), "jvp_params": (False, True, False),
          "eval_no_grad": (True, True, True), "forward_ad": (True, True, False)}
# Kernels that only some modes reach (fast paths, mkldnn), named in a column's detail
# so the table shows which path it measured.
FAST_PATH_KERNELS = ("_transformer_encoder_layer_fwd", "_native_multi_head_attention", "_nested_tensor_from_mask",
                     "mkldnn_rnn_layer", "mkldnn_rnn", "_scaled_dot_product_flash_attention_for_cpu")


def entries() -> list[str]:
    return sorted(MODULE_CASES)


def family_of(name: str) -> str:
    return MODULE_CASES[name].family


class _Called(nn.Module):
    """The case's way of calling its module, as a module, so functional_call can swap parameters."""

    def __init__(self, case: ModuleCase, inner: nn.Module):
        super().__init__()
        self.case, self.inner = case, inner

    def forward(self, *inputs):
        outputs = self.case.forward(self.inner, *inputs)
        return tuple(leaf for leaf in tree_leaves(outputs) if isinstance(leaf, torch.Tensor) and leaf.is_floating_point())


def _float_positions(inputs) -> list[int]:
    return [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.is_floating_point()]


def _with(inputs, positions, values) -> list:
    inputs = list(inputs)
    for position, value in zip(positions, values):
        inputs[position] = value
    return inputs


def _mode(eval_no_grad: bool):
    return torch.no_grad() if eval_no_grad else contextlib.nullcontext()


def _setup(case: ModuleCase, dtype: torch.dtype, eval_no_grad: bool) -> _Called:
    called = _Called(case, case.module(dtype))
    if eval_no_grad:
        called.eval().requires_grad_(False)
    return called.train(not eval_no_grad)


def _fast_paths(called: _Called, inputs, eval_no_grad: bool) -> list[str]:
    """The fast-path kernels the primal call reaches in this mode."""
    try:
        with _mode(eval_no_grad), OpsSeen() as seen:
            called(*inputs)
    except Exception:  # noqa: BLE001 - a primal that fails under the dispatch mode: the check says more
        return []
    return [name for name in FAST_PATH_KERNELS if name in seen.names]


def _finite_differences(case, eval_no_grad, inputs, positions, input_tangents, param_tangents) -> list[torch.Tensor]:
    """Central differences of the float64 module along (input_tangents, param_tangents)."""
    called = _setup(case, torch.float64, eval_no_grad)
    params = dict(called.named_parameters())

    def at(sign):
        xs = [x + sign * FD_EPS * t for x, t in zip((inputs[p] for p in positions), input_tangents)]
        ps = {n: p + sign * FD_EPS * param_tangents[n] for n, p in params.items()} if param_tangents else {}
        with torch.no_grad():
            return torch.func.functional_call(called, ps, tuple(_with(inputs, positions, xs)))

    return [(p - m) / (2 * FD_EPS) for p, m in zip(at(1), at(-1))]


def _tangents(called: _Called, case, column: str, eval_no_grad: bool, inputs, positions, input_tangents, param_tangents):
    """The module's output tangents in `case.dtype`, the column's way."""
    cast = [t.to(case.dtype) for t in input_tangents]
    primals = [inputs[p] for p in positions]
    params = dict(called.named_parameters())
    param_cast = {n: t.to(case.dtype) for n, t in param_tangents.items()} if param_tangents else {}
    if column == "forward_ad" or (column == "eval_no_grad" and case.eval_via == "forward_ad"):
        with _mode(eval_no_grad), fwAD.dual_level():
            duals = [fwAD.make_dual(x, t) for x, t in zip(primals, cast)]
            dual_params = {n: fwAD.make_dual(p, param_cast[n]) for n, p in params.items()}
            outputs = torch.func.functional_call(called, dual_params, tuple(_with(inputs, positions, duals)))
            tangents = [fwAD.unpack_dual(o).tangent for o in outputs]
            return [torch.zeros_like(o) if t is None else t.clone() for o, t in zip(outputs, tangents)]
    if column == "jvp_input":
        def f(*xs):
            return called(*_with(inputs, positions, xs))

        return list(torch.func.jvp(f, tuple(primals), tuple(cast))[1])

    def g(xs, ps):  # jvp_params: no input tangents; eval_no_grad: both, parameters detached
        return torch.func.functional_call(called, ps, tuple(_with(inputs, positions, xs)))

    ps = {n: p.detach() for n, p in params.items()}
    with _mode(eval_no_grad):
        return list(torch.func.jvp(g, (primals, ps), (cast, param_cast))[1])


def check(name: str, column: str) -> tuple[str, str]:
    case = MODULE_CASES[name]
    on_inputs, on_params, eval_no_grad = SETUPS[column]
    generator = torch.Generator().manual_seed(0)
    inputs64 = case.inputs(torch.float64, generator)
    positions = _float_positions(inputs64) if on_inputs else []
    if column == "jvp_input" and not positions:
        return EXCLUDED, "no floating-point input (indices only): nothing to take a tangent of"
    called = _setup(case, case.dtype, eval_no_grad)
    input_tangents = [torch.randn(inputs64[p].shape, dtype=torch.float64, generator=generator) for p in positions]
    param_tangents = ({n: torch.randn(p.shape, dtype=torch.float64, generator=generator)
                       for n, p in called.named_parameters()} if on_params else {})
    inputs = [x.to(case.dtype) if x.is_floating_point() else x for x in inputs64]
    reached = _fast_paths(called, inputs, eval_no_grad)
    actual = _tangents(called, case, column, eval_no_grad, inputs, positions, input_tangents, param_tangents)
    expected = _finite_differences(case, eval_no_grad, inputs64, positions, input_tangents, param_tangents)
    for index, (a, e) in enumerate(zip(actual, expected)):
        if not torch.allclose(a.to(torch.float64), e, **FD_TOL):
            error = (a.to(torch.float64) - e).abs().nan_to_num(nan=float("inf")).max().item()
            raise GradcheckError(f"tangent of output {index} mismatch against finite differences: "
                                 f"max abs difference {error:.3g}")
    precision = "float64" if case.dtype == torch.float64 else f"{str(case.dtype).removeprefix('torch.')} vs float64"
    via = f"; reaches aten::{', aten::'.join(reached)}" if reached else ""
    note = f"; {case.note}" if case.note else ""
    if column == "eval_no_grad" and case.eval_via == "forward_ad":
        note += "; under forward_ad: torch.func cannot wrap a nested tensor (docs/out_of_reach.md)"
    return PASS, f"{len(actual)} outputs, {precision} finite differences{via}{note}"
