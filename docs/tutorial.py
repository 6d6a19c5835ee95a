# %% [markdown]
# # Forward-mode automatic differentiation with torch_fwdad
#
# Forward-mode AD computes a Jacobian-vector product (JVP): the derivative of a function
# at a point `x` along a direction `t`, in the same pass as the function itself. It is
# the natural tool for Jacobians with few inputs, for Hessians (forward over reverse),
# for sparse Jacobians, and for directional derivatives of any size.
#
# PyTorch has forward mode (`torch.autograd.forward_ad`, `torch.func.jvp`), but many
# operators have no forward formula: `torch.cdist`, the CPU flash-attention kernel,
# `cholesky`, `ctc_loss`, every `torch.library.custom_op`... torch_fwdad adds them
# without rebuilding PyTorch. This tutorial follows PyTorch's own forward-AD tutorial
# and goes beyond it:
#
# 1. the low-level API, `torch.autograd.forward_ad`;
# 2. `torch.func`: `jvp`, `jacfwd`, `vmap`, `hessian`, and `nn.Module`s;
# 3. forward rules of your own;
# 4. sparse Jacobians and Hessians;
# 5. performance;
# 6. for contributors: adding a formula.
#
# This file is a runnable script in "percent" format (`# %%` starts a cell; Jupyter,
# VS Code and jupytext open it as a notebook). After the README's install command run it
# with `python docs/tutorial.py [OUTPUT_DIR]`: it writes one plot into OUTPUT_DIR (or into
# `$TORCH_FWDAD_TUTORIAL_DIR`, or a new temporary directory). `tests/test_docs.py`
# runs it whole, so every cell below is checked by CI. Timings are measured when the
# cell runs, at small sizes: your numbers will differ.

# %%
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
import torch.nn.functional as F

import torch_fwdad  # installs the forward rules this torch lacks

torch.manual_seed(0)
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    OUTPUT_DIR = Path(sys.argv[1])
elif os.environ.get("TORCH_FWDAD_TUTORIAL_DIR"):
    OUTPUT_DIR = Path(os.environ["TORCH_FWDAD_TUTORIAL_DIR"])
else:
    OUTPUT_DIR = Path(tempfile.mkdtemp(prefix="torch_fwdad_tutorial_"))
OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
print(f"torch {torch.__version__}, torch_fwdad {torch_fwdad.__version__}; plots go to {OUTPUT_DIR}")


def finite_difference(f, x, t, eps=1e-6):
    """Central difference (f(x + eps t) - f(x - eps t)) / 2 eps: what a JVP approximates."""
    return (f(x + eps * t) - f(x - eps * t)) / (2 * eps)


# %% [markdown]
# ## 1. The low-level API: `torch.autograd.forward_ad`
#
# Inside a `dual_level`, `make_dual(x, t)` attaches the tangent `t` to `x`. Every
# operation on the dual tensor also computes the derivative along `t`, and
# `unpack_dual` reads primal and tangent back.
#
# `torch.cdist` (pairwise distances) is an operator PyTorch can differentiate in reverse
# mode only. Let us first see what plain PyTorch says: `torch_fwdad.disable()` removes
# every rule torch_fwdad installed, `torch_fwdad.enable()` puts them back.

# %%
x = torch.randn(5, 3, dtype=torch.float64)
y = torch.randn(4, 3, dtype=torch.float64)
t = torch.randn(5, 3, dtype=torch.float64)  # the direction

torch_fwdad.disable()
try:
    with fwAD.dual_level():
        torch.cdist(fwAD.make_dual(x, t), y)
except NotImplementedError as error:
    print("plain PyTorch:", str(error).splitlines()[0])
else:
    raise AssertionError("expected PyTorch to refuse forward mode through cdist")
finally:
    torch_fwdad.enable()

# %% [markdown]
# With torch_fwdad enabled, the same code runs. The tangent is the derivative of the
# distances along `t`; check it against finite differences.

# %%
with fwAD.dual_level():
    out = torch.cdist(fwAD.make_dual(x, t), y)
    distances, tangent = fwAD.unpack_dual(out)

torch.testing.assert_close(distances, torch.cdist(x, y))
torch.testing.assert_close(tangent, finite_difference(lambda x: torch.cdist(x, y), x, t))
print(tangent)

# %% [markdown]
# `torch.cdist` is a Python-level function; the operator that lacked a formula is the
# aten overload it dispatches to, `aten::_cdist_forward`. `registered_ops()` lists every
# rule active for the installed torch, and where it comes from (an entry of
# `derivatives.yaml`, or a module of torch_fwdad for custom operators):

# %%
rules = {rule.name: rule for rule in torch_fwdad.registered_ops()}
print(len(rules), "rules active;", rules["aten::_cdist_forward"])

# %% [markdown]
# Primal results and reverse mode are untouched: torch_fwdad calls PyTorch's own kernel
# for the primal (so PyTorch's backward graph is built as before) and only attaches the
# tangent. Without any tangent around, the rule is skipped altogether.

# %%
x_ = x.clone().requires_grad_()
torch.cdist(x_, y).sum().backward()
torch_fwdad.disable()
x_plain = x.clone().requires_grad_()
torch.cdist(x_plain, y).sum().backward()
torch_fwdad.enable()
assert torch.equal(x_.grad, x_plain.grad)

# %% [markdown]
# ## 2. `torch.func`: jvp, jacfwd, vmap, hessian, and modules
#
# `torch.func.jvp(f, primals, tangents)` returns `(f(*primals), JVP)`. Only the inputs
# you give tangents to are differentiated: here `x` moves and `y` is a constant.

# %%
out, jvp_out = torch.func.jvp(lambda x: torch.cdist(x, y), (x,), (t,))
torch.testing.assert_close(jvp_out, tangent)

# %% [markdown]
# `jacfwd` builds the whole Jacobian from one JVP per input entry, batched with `vmap`.
# Writing that `vmap` yourself gives Jacobian-matrix products: any batch of directions
# at once.

# %%
J = torch.func.jacfwd(lambda x: torch.cdist(x, y))(x)  # shape (*out, *in) = (5, 4, 5, 3)
print("Jacobian shape:", tuple(J.shape))

directions = torch.randn(7, 5, 3, dtype=torch.float64)
batched = torch.func.vmap(lambda d: torch.func.jvp(lambda x: torch.cdist(x, y), (x,), (d,))[1])(directions)
torch.testing.assert_close(batched, torch.einsum("abij,nij->nab", J, directions))

# %% [markdown]
# ### Modules
#
# `torch.func.functional_call(module, params, args)` runs a module with the parameters
# you pass, so a module becomes a function of its parameters and every transform of
# `torch.func` applies. Here is a small pre-norm transformer block. On CPU,
# `F.scaled_dot_product_attention` dispatches to the fused flash kernel
# `aten::_scaled_dot_product_flash_attention_for_cpu`, which has no forward formula in
# PyTorch.

# %%
class Block(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):  # x: (batch, tokens, dim)
        B, L, D = x.shape
        qkv = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, D // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, tokens, head_dim)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(B, L, D))
        return x + self.mlp(self.norm2(x))


block = Block().double()
tokens = torch.randn(2, 6, 16, dtype=torch.float64)
params = {name: p.detach() for name, p in block.named_parameters()}

print("CPU flash kernel has a rule:",
      "aten::_scaled_dot_product_flash_attention_for_cpu" in rules)

# %% [markdown]
# The derivative of the block's output along a random direction in parameter space: one
# forward pass carries it, whatever the number of parameters.

# %%
def block_output(params):
    return torch.func.functional_call(block, params, (tokens,))


direction = {name: torch.randn_like(p) for name, p in params.items()}
out, out_tangent = torch.func.jvp(block_output, (params,), (direction,))
expected = finite_difference(
    lambda s: block_output({n: p + s * direction[n] for n, p in params.items()}),
    torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
torch.testing.assert_close(out_tangent, expected)

# %% [markdown]
# `torch.func.hessian` is `jacfwd(jacrev(f))`: forward mode over reverse mode. It needs
# a JVP of every *backward* operator, here of the flash kernel's backward, which torch_fwdad
# also provides. We take the Hessian of a loss with respect to one parameter tensor and
# compare it with the same Hessian computed under PyTorch's MATH attention backend (plain
# differentiable ops, which PyTorch handles alone but slower and with more memory).
# `hessian` vmaps over the flash kernel's backward, for which PyTorch has no batching
# rule: it warns and runs a loop instead. The result is right; we silence that warning.

# %%
import warnings

from torch.nn.attention import SDPBackend, sdpa_kernel

warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented the batching rule")

target = torch.randn_like(tokens)


def loss(weight):
    out = torch.func.functional_call(block, {**params, "norm1.weight": weight}, (tokens,))
    return F.mse_loss(out, target)


H = torch.func.hessian(loss)(params["norm1.weight"])
with sdpa_kernel(SDPBackend.MATH):
    H_math = torch.func.hessian(loss)(params["norm1.weight"])
torch.testing.assert_close(H, H_math)
torch.testing.assert_close(H, H.mT)
print("Hessian", tuple(H.shape), "matches the MATH backend")

# %% [markdown]
# ### Models as they run in inference, and what is covered
#
# `nn.TransformerEncoderLayer`, `nn.MultiheadAttention` and the float32 `nn.LSTM` take
# fused CPU kernels when nothing requires grad (eval mode under `no_grad`, or detached
# parameters through `functional_call`): `_transformer_encoder_layer_fwd`,
# `_native_multi_head_attention`, `mkldnn_rnn_layer`. torch_fwdad has rules for them, so
# the usual inference-time uses of forward mode (sensitivities, linearised models) work
# without leaving the fast path. (`nn.TransformerEncoder` with a `src_key_padding_mask`
# builds a nested tensor in eval mode: that path works under `torch.autograd.forward_ad`;
# `torch.func` transforms cannot wrap a nested tensor, in plain PyTorch either.)

# %%
layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True).double().eval()
sequence = torch.randn(2, 5, 16, dtype=torch.float64)
seq_direction = torch.randn_like(sequence)
with torch.no_grad():
    _, layer_tangent = torch.func.jvp(layer, (sequence,), (seq_direction,))
    expected = finite_difference(layer, sequence, seq_direction)
torch.testing.assert_close(layer_tangent, expected)

# %% [markdown]
# Every rule and its conventions are listed in `docs/reference.md`, generated from
# `derivatives.yaml`. One convention matters in practice: **`ctc_loss`'s JVP follows
# PyTorch's backward**, which assumes `log_probs` are normalised (a `log_softmax` output).
# It is the exact derivative for tangents that come through `log_softmax`, as in every
# CTC model; on raw, unnormalised log-probabilities it differs from finite differences,
# as PyTorch's gradient does.

# %%
frames, batch, classes = 6, 2, 4
logits = torch.randn(frames, batch, classes, dtype=torch.float64)
targets, input_lengths, target_lengths = torch.tensor([[1, 2], [3, 3]]), [6, 5], [2, 2]


def ctc_of_logits(logits):
    return F.ctc_loss(F.log_softmax(logits, -1), targets, input_lengths, target_lengths, reduction="sum")


logit_direction = torch.randn_like(logits)
_, ctc_tangent = torch.func.jvp(ctc_of_logits, (logits,), (logit_direction,))
torch.testing.assert_close(ctc_tangent, finite_difference(ctc_of_logits, logits, logit_direction))
print("CTC through log_softmax: JVP matches finite differences")

# %% [markdown]
# ## 3. Forward rules of your own
#
# Three tools, by what you have (docs/custom_rules.md has the details):
#
# | You have | Use |
# |---|---|
# | an operator: `torch.library.custom_op`, an aten overload without formula | `torch_fwdad.register_jvp(op, rule)` |
# | a Python function autograd should not differentiate through | `@torch_fwdad.custom_jvp` |
# | a function whose backward is *not* the transpose of its JVP | `torch.autograd.Function` |
#
# ### `register_jvp` for a custom operator
#
# PyTorch gives a `torch.library.custom_op` no forward mode and says nothing: the tangent
# is silently zero. Here is an operator whose kernel leaves PyTorch (NumPy stands in for
# a fused C++ or Triton kernel).

# %%
import numpy as np


@torch.library.custom_op("tutorial::scaled_softplus", mutates_args=())
def scaled_softplus(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """scale * log(1 + exp(x)), computed outside PyTorch."""
    value = scale.numpy() * np.logaddexp(0.0, x.numpy())
    return torch.from_numpy(value)


@scaled_softplus.register_fake
def _(x, scale):
    return torch.empty_like(x)


x = torch.randn(6, dtype=torch.float64)
scale = torch.tensor(2.0, dtype=torch.float64)
_, silent = torch.func.jvp(scaled_softplus, (x, scale), (torch.ones_like(x), torch.zeros_like(scale)))
print("before register_jvp, tangent =", silent)

# %% [markdown]
# The rule gets `primals` (all arguments, in schema order), `tangents` (aligned with them:
# a tensor, or `None` where an argument carries no tangent) and the operator's `output`.
# It must be linear in the tangents. Handling `None` per input means inputs without a
# tangent cost nothing. `transpose=True` also derives reverse mode from the rule, since
# this operator has no `register_autograd`.

# %%
@torch_fwdad.register_jvp(scaled_softplus, transpose=True)
def scaled_softplus_jvp(primals, tangents, output):
    (x, scale), (x_t, scale_t) = primals, tangents
    result = None
    if x_t is not None:
        result = scale * torch.sigmoid(x) * x_t
    if scale_t is not None:
        term = F.softplus(x) * scale_t
        result = term if result is None else result + term
    return result


torch_fwdad.check_jvp(scaled_softplus, (x, scale))  # finite differences and linearity
_, tangent = torch.func.jvp(scaled_softplus, (x, scale), (torch.ones_like(x), torch.zeros_like(scale)))
torch.testing.assert_close(tangent, scale * torch.sigmoid(x))
grad_x = torch.func.grad(lambda x: scaled_softplus(x, scale).sum())(x)  # reverse mode, derived
torch.testing.assert_close(grad_x, scale * torch.sigmoid(x))

# %% [markdown]
# ### `custom_jvp` for a Python function
#
# Autograd differentiates the operations a function performs, which is sometimes the
# wrong thing. Solving `z**3 + z = a` by bisection uses only comparisons, so autograd sees
# a constant and returns a zero derivative, silently. The implicit function theorem gives
# the right one: `3 z**2 dz + dz = da`, so `dz = da / (3 z**2 + 1)`.

# %%
def bisect_root(a, iterations=60):
    low, high = torch.full_like(a, -10.0), torch.full_like(a, 10.0)
    for _ in range(iterations):
        mid = (low + high) / 2
        too_high = mid**3 + mid > a
        low, high = torch.where(too_high, low, mid), torch.where(too_high, mid, high)
    return (low + high) / 2


a = torch.tensor([-2.0, 0.5, 10.0], dtype=torch.float64)
print("autograd through bisection:", torch.func.jvp(bisect_root, (a,), (torch.ones_like(a),))[1])


@torch_fwdad.custom_jvp
def cubic_root(a):
    return bisect_root(a)


@cubic_root.defjvp
def cubic_root_jvp(primals, tangents):
    (a,), (a_t,) = primals, tangents
    z = cubic_root(a)
    return z, a_t / (3 * z**2 + 1)


z, dz = torch.func.jvp(cubic_root, (a,), (torch.ones_like(a),))
torch.testing.assert_close(dz, 1 / (3 * z**2 + 1))
torch.testing.assert_close(torch.func.grad(lambda a: cubic_root(a).sum())(a), dz)  # reverse: the transpose
torch_fwdad.check_jvp(cubic_root, (a,))
print("custom_jvp:", dz)

# %% [markdown]
# ### When to use `torch.autograd.Function` instead
#
# `custom_jvp` derives reverse mode by transposing your rule, which is what you want
# almost always. Write a `torch.autograd.Function` (with `setup_context`, so it works
# under `torch.func`) when the backward must be something else: a cheaper adjoint,
# recomputation instead of saved tensors, or, as here, a gradient deliberately altered
# (clipped) while the forward derivative stays exact. Note that `forward` runs with
# forward AD disabled, and that a Function cannot be differentiated forward-over-forward.

# %%
class ClipGradient(torch.autograd.Function):
    """Identity; its backward clips the incoming gradient to [-1, 1]."""

    @staticmethod
    def forward(x):
        return x.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def jvp(ctx, x_t):
        return x_t

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(-1, 1)


v = torch.tensor([0.5, 3.0], dtype=torch.float64)
assert torch.equal(torch.func.jvp(ClipGradient.apply, (v,), (torch.full_like(v, 5.0),))[1], torch.full_like(v, 5.0))
assert torch.equal(torch.func.grad(lambda v: (5 * ClipGradient.apply(v)).sum())(v), torch.ones_like(v))

# %% [markdown]
# ## 4. Sparse Jacobians and Hessians
#
# A Jacobian with n columns costs n JVPs with `jacfwd`. When most entries are known to
# be zero, columns that never share a nonzero row can be summed into one direction: one
# JVP per *colour* of the columns, then each entry is read back from the compressed
# products. `torch_fwdad.jacobian` and `torch_fwdad.hessian` do this (docs/sparse.md).
#
# ### A known pattern
#
# A 1-D diffusion stencil with a nonlinearity has a tridiagonal Jacobian: `Banded(1, 1)`
# (one band below the diagonal, one above). Three JVPs suffice, whatever n.

# %%
from torch_fwdad import Banded, BlockDiagonal, hessian, hessian_plan, jacobian, jacobian_plan


def stencil(u):
    padded = F.pad(u, (1, 1))
    return padded[:-2] - 2 * u + padded[2:] + torch.sin(u) * u


u = torch.linspace(0, 1, 200, dtype=torch.float64)
J_sparse = jacobian(stencil, u, sparsity=Banded(1, 1))  # a torch sparse COO tensor
torch.testing.assert_close(J_sparse.to_dense(), torch.func.jacfwd(stencil)(u))
plan = jacobian_plan(Banded(1, 1))
plan(stencil, u)
print(f"n = {u.numel()}: {plan.num_colors} JVPs instead of {u.numel()}; nnz = {J_sparse._nnz()}")

# %% [markdown]
# ### Structured and explicit patterns
#
# Besides `Banded`, there are `"diagonal"` and `BlockDiagonal(block_size)`; any boolean
# tensor (or scipy sparse matrix) of shape (outputs, inputs) is accepted too.
# `check="raise"` spends one extra product to verify the pattern: a pattern that misses a
# true nonzero raises `SparsityPatternError` instead of giving wrong numbers.

# %%
def pairwise_rotation(w):  # mixes entries 2i and 2i+1 only: 2x2 blocks
    pairs = w.view(-1, 2)
    return torch.stack([pairs[:, 0] * torch.cos(pairs[:, 1]), pairs[:, 0] * torch.sin(pairs[:, 1])], 1).flatten()


w = torch.rand(10, dtype=torch.float64)
J_blocks = jacobian(pairwise_rotation, w, sparsity=BlockDiagonal(2), output="dense", check="raise")
torch.testing.assert_close(J_blocks, torch.func.jacfwd(pairwise_rotation)(w))

index = torch.arange(200)
explicit = (index[:, None] - index[None, :]).abs() <= 1  # a boolean (outputs, inputs) tridiagonal
torch.testing.assert_close(jacobian(stencil, u, sparsity=explicit).to_dense(), J_sparse.to_dense())

try:
    jacobian(stencil, u, sparsity="diagonal", check="raise")  # wrong: misses the off-diagonals
except torch_fwdad.SparsityPatternError as error:
    print("caught:", str(error).splitlines()[0])

# %% [markdown]
# ### Detection
#
# `sparsity="detect"` traces the function once and propagates which inputs each output
# depends on. Here the 2-D Brusselator reaction-diffusion system on an 8 x 8 periodic grid
# (two species, 128 unknowns): a 5-point stencil per species plus a local coupling.
# Hessians are coloured with star or acyclic colourings, which exploit symmetry.

# %%
from torch_fwdad.sparse_ad.examples import arrowhead, brusselator

rhs, state, _ = brusselator(N=8)
detected = jacobian_plan("detect")
J_brusselator = detected(rhs, state, output="dense")
torch.testing.assert_close(J_brusselator, torch.func.jacfwd(rhs)(state))  # shape (8, 8, 2, 8, 8, 2)
print(f"Brusselator: {state.numel()} unknowns, {detected.pattern.nnz} nonzeros, "
      f"{detected.num_colors} JVPs ({detected.coloring})")

energy, point, _ = arrowhead(n=100)  # x[0] couples to every entry: an arrowhead Hessian
for method in ("star", "acyclic"):
    hplan = hessian_plan("detect", method=method)
    H_sparse = hplan(energy, point, output="dense")
    torch.testing.assert_close(H_sparse, torch.func.hessian(energy)(point))
    print(f"arrowhead Hessian, {method}: {hplan.num_colors} Hessian-vector products instead of {point.numel()}")

# %% [markdown]
# ### Reusing a plan: Newton's method
#
# A plan keeps the pattern and the colouring; each call only evaluates the compressed
# products. That is what an iterative solver wants: prepare once, evaluate every step.
# Solve the boundary-value problem `-u'' + u**3 = f` on (0, 1) with `u(0) = u(1) = 0`,
# discretised on 200 points, by Newton's method: each step a sparse linear solve (scipy).
# Convergence is quadratic once close: watch the residual square at each step.

# %%
import scipy.sparse
import scipy.sparse.linalg

n = 200
f = 1000 * torch.linspace(-1, 1, n, dtype=torch.float64)


def equations(u):
    padded = F.pad(u, (1, 1))  # u = 0 at both ends
    return (2 * u - padded[:-2] - padded[2:]) * (n + 1) ** 2 + u**3 - f


newton_plan = jacobian_plan("detect")
u = torch.zeros(n, dtype=torch.float64)
for step in range(20):
    residual = equations(u)
    print(f"step {step}: |residual| = {residual.norm():.2e}")
    if residual.norm() < 1e-8:
        break
    J_scipy = newton_plan(equations, u, output="scipy-csc")  # what scipy's sparse solvers take
    u = u - torch.from_numpy(scipy.sparse.linalg.spsolve(J_scipy, residual.numpy()))
assert residual.norm() < 1e-8
print(f"{newton_plan.num_colors} JVPs per Jacobian, pattern detected once")

# %% [markdown]
# ### Plotting the pattern and its colouring
#
# Each nonzero of the Brusselator Jacobian, coloured by the colour of its column: within
# a row, no colour appears twice, which is why one JVP per colour recovers every entry.
# (matplotlib is only needed for this cell: `pip install matplotlib`.)

# %%
try:
    import matplotlib
except ImportError:
    print("matplotlib is not installed: skipping the plot (pip install matplotlib)")
else:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = detected.pattern.nonzero()
    colors = detected.coloring.colors[cols]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 5))
    left.scatter(cols, rows, s=2, c="black", marker="s")
    left.set_title(f"Brusselator Jacobian: {detected.pattern.nnz} nonzeros")
    right.scatter(cols, rows, s=2, c=colors, cmap="tab10", marker="s")
    right.set_title(f"column colouring: {detected.num_colors} colours = JVPs")
    for axes in (left, right):
        axes.set_xlim(-0.5, 127.5)
        axes.set_ylim(127.5, -0.5)
        axes.set_aspect("equal")
        axes.set_xlabel("input")
        axes.set_ylabel("output")
    figure.tight_layout()
    figure.savefig(OUTPUT_DIR / "brusselator_coloring.png", dpi=80)
    plt.close(figure)
    print("wrote", OUTPUT_DIR / "brusselator_coloring.png")

# %% [markdown]
# ## 5. Performance
#
# A helper that times a call with `torch.utils.benchmark` (median of repeated runs).

# %%
from torch.utils.benchmark import Timer


def median_ms(fn, min_run_time=0.2):
    return Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median * 1e3


# %% [markdown]
# ### What partial duals save
#
# torch_fwdad writes formulas per input wherever it can: the term of an input without a
# tangent is never computed. Differentiating cdist with respect to `x1` only skips the
# term of `x2`. (Timings on a shared machine are noisy: run the cell twice, or the
# benchmark below, before drawing conclusions.)

# %%
p1, p2, d1, d2 = (torch.randn(512, 32) for _ in range(4))
primal_ms = median_ms(lambda: torch.cdist(p1, p2))
both_ms = median_ms(lambda: torch.func.jvp(torch.cdist, (p1, p2), (d1, d2)))
one_ms = median_ms(lambda: torch.func.jvp(lambda a: torch.cdist(a, p2), (p1,), (d1,)))
print(f"cdist 512 x 512 points, dim 32, float32, {torch.get_num_threads()} threads (measured now):")
print(f"  primal {primal_ms:.2f} ms | jvp, both inputs dual {both_ms:.2f} ms | jvp, one input dual {one_ms:.2f} ms")
print(f"  one-dual / both-dual = {one_ms / both_ms:.2f}")

# %% [markdown]
# ### What the attention JVP costs
#
# torch_fwdad computes the attention tangent blockwise from the flash kernel's own
# output and log-sum-exp, without forming the L x L attention matrix. The usual
# workaround without it is to force the MATH backend, which materialises that matrix.
# Measured here at one small size; `benchmarks/bench_attention.py` measures realistic
# lengths, with memory:

# %%
q, k, v, dq, dk, dv = (torch.randn(1, 4, 512, 32) for _ in range(6))
sdpa = F.scaled_dot_product_attention
primal_ms = median_ms(lambda: sdpa(q, k, v))
fwdad_ms = median_ms(lambda: torch.func.jvp(sdpa, (q, k, v), (dq, dk, dv)))


def math_jvp():
    with sdpa_kernel(SDPBackend.MATH):
        return torch.func.jvp(sdpa, (q, k, v), (dq, dk, dv))


math_ms = median_ms(math_jvp)
torch.testing.assert_close(torch.func.jvp(sdpa, (q, k, v), (dq, dk, dv))[1], math_jvp()[1], atol=1e-4, rtol=1e-4)
print("attention B=1 H=4 L=S=512 E=32, float32 (measured now):")
print(f"  primal (flash) {primal_ms:.2f} ms | torch_fwdad jvp {fwdad_ms:.2f} ms ({fwdad_ms / primal_ms:.1f}x primal)"
      f" | MATH-backend jvp {math_ms:.2f} ms ({math_ms / primal_ms:.1f}x primal)")

# %% [markdown]
# ### Reading the benchmarks
#
# The `benchmarks/` scripts measure the same things at realistic sizes, each contender
# side by side in one run, so ratios are comparable even on a busy machine:
#
# - `python benchmarks/bench_engine.py`: cdist JVP time / primal time, one-input-dual /
#   both-dual time (the saving above), and the per-call cost torch_fwdad adds when no
#   tangent is around (the fast path: compare "plain PyTorch" with "torch_fwdad, no dual
#   level").
# - `python benchmarks/bench_attention.py --lengths 1024 4096`: time and peak memory of
#   the primal, the torch_fwdad JVP and the MATH-backend JVP; memory is measured in a
#   fresh process per row.
# - `python benchmarks/bench_sparse.py --quick`: for each sparse problem, the colours
#   against their lower bound, preparation time (paid once per plan) apart from a
#   prepared plan's evaluation ÷ primal, and the dense `jacfwd` / `hessian` baselines.
#
# The engine benchmark's functions can be called at small sizes too:

# %%
import importlib.util

try:
    REPOSITORY = Path(__file__).resolve().parents[1]
except NameError:  # in a notebook: started from the repository root
    REPOSITORY = Path.cwd()
spec = importlib.util.spec_from_file_location("bench_engine", REPOSITORY / "benchmarks" / "bench_engine.py")
bench_engine = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_engine)
bench_engine.jvp_ratios(points=256, dim=16, min_run_time=0.1)
bench_engine.fast_path_overhead(min_run_time=0.1)

# %% [markdown]
# ## 6. For contributors: adding a formula
#
# Formulas for aten operators live in `derivatives.yaml`, one entry per overload, in
# the vocabulary of PyTorch's own derivatives.yaml: `x_p` is the primal of input `x`,
# `x_t` its tangent, `result` the output. Complex math goes into a helper in
# `torch_fwdad/formulas/<family>.py`. The steps, for an overload `aten::op`:
#
# 1. `python tools/new_formula.py aten::op` scaffolds the entry (schema copied from the
#    installed torch, torch's backward formulas as comments) and a sample generator stub
#    in `torch_fwdad/testing/samples/<family>.py`;
# 2. write the formula and its helper, and samples (`@samples_for("aten::op")`);
# 3. `python -m codegen` regenerates `torch_fwdad/_generated/jvp_rules.py` and
#    `docs/reference.md` (CI runs `python -m codegen --check`);
# 4. `python -m pytest tests/test_formulas.py -k op` runs the check matrix;
# 5. `python -m torch_fwdad report --ops op` shows the op in the coverage report.
#
# The same pipeline, on an entry written inline. Take `_euclidean_dist(x1, x2)` (the
# matrix-product path of `cdist` for p = 2): `result[i, j] = |x1[i] - x2[j]|`. In the
# per-input form each input gets its own linear term, and the generated code skips the
# terms of inputs without a tangent. The helper would live in `formulas/distance.py`.

# %%
sys.path.insert(0, str(REPOSITORY))  # codegen/ is a tool of the repository, not of the package
from codegen.emit import emit_rule
from codegen.model import DerivativesError
from codegen.parse import formula_helpers, parse


def euclidean_term(x_t, x_p, other_p, result):
    """d result[i, j] along x_t, for x the first argument: <x_i - other_j, x_t_i> / result[i, j]."""
    difference = x_p.unsqueeze(-2) - other_p.unsqueeze(-3)
    inner = (difference * x_t.unsqueeze(-2)).sum(-1)
    return torch.where(result > 0, inner / torch.where(result > 0, result, 1), 0)


ENTRY = """
- name: _euclidean_dist(Tensor x1, Tensor x2) -> Tensor
  result:
    x1: euclidean_term(x1_t, x1_p, x2_p, result)
    x2: euclidean_term(x2_t, x2_p, x1_p, result.mT).mT
"""
helpers = formula_helpers() | {"euclidean_term"}
(entry,) = parse(ENTRY, "inline.yaml", helpers)
source = emit_rule(entry)
print(source)

# %% [markdown]
# The parser checks the schema against the installed torch and every name a formula
# uses, with messages that say what to write instead:

# %%
for mistake in (ENTRY.replace("x1_p, x2_p", "x1, x2_p"), ENTRY.replace("x1_t, x1_p", "x2_t, x1_p")):
    try:
        parse(mistake, "inline.yaml", helpers)
    except DerivativesError as error:
        print(error)

# %% [markdown]
# The generated rule has the signature of `register_jvp`: `(primals, tangents, outputs)`.
# Call it directly and compare with finite differences (with a tangent on one input
# only, then on both):

# %%
namespace = {"torch": torch, "add_tangents": torch_fwdad.formulas.add_tangents, "euclidean_term": euclidean_term}
exec(source, namespace)
rule = namespace[entry.function_name]

x1, x2 = torch.randn(4, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
t1, t2 = torch.randn_like(x1), torch.randn_like(x2)
result = torch.ops.aten._euclidean_dist(x1, x2)
torch.testing.assert_close(rule((x1, x2), (t1, None), result),
                           finite_difference(lambda a: torch.ops.aten._euclidean_dist(a, x2), x1, t1))
both = finite_difference(lambda s: torch.ops.aten._euclidean_dist(x1 + s * t1, x2 + s * t2),
                         torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
torch.testing.assert_close(rule((x1, x2), (t1, t2), result), both)

# %% [markdown]
# In the repository, `tests/test_formulas.py` runs every sample of every entry through the
# check matrix: finite differences (gradcheck with forward AD), JVP/VJP consistency with
# PyTorch's backward, primal and backward bitwise unchanged, every subset of inputs with
# tangents, and forward-over-forward. This is what it does for the real
# `_euclidean_dist` entry:

# %%
from torch_fwdad.testing import CHECKS, sample_registry

source_of_samples = sample_registry()["aten::_euclidean_dist"]
overload = torch.ops.aten._euclidean_dist.default
samples = list(source_of_samples.generate(torch.float64, "cpu"))
for sample in samples:
    for check in CHECKS.values():
        check(overload, sample)
print(f"{len(samples)} samples x {len(CHECKS)} checks passed: {', '.join(CHECKS)}")

# %% [markdown]
# Every entry, with its formula and the torch it applies to, is listed in
# [the reference page](reference.md), generated from `derivatives.yaml` by the same
# `python -m codegen`.
