"""Whole-model JVP cost: JVP time / primal time, with and without torch_fwdad, side by side.

Models, float32 on CPU, as users run them:
  - nn.TransformerEncoderLayer (d=512, L=256, B=8) in eval mode under no_grad, where it
    takes the fused _transformer_encoder_layer_fwd kernel, and in train mode (dropout,
    parameters requiring grad), where it runs the unfused modules;
  - a float32 nn.LSTM in eval mode under no_grad and in train mode (both mkldnn_rnn_layer
    on CPU);
  - a ResNet-style stack of conv / batch-norm / ReLU blocks in eval mode under no_grad;
  - the eval encoder layer again with grad enabled (parameters requiring grad), where it
    runs the unfused modules: the JVP PyTorch computes without the fused kernel.

Columns, all measured in one run with torch.utils.benchmark (median of blocked_autorange):
  primal    the model's forward alone (the floor every ratio is measured against);
  fwdad     torch.func.jvp with torch_fwdad installed, ÷ primal;
  plain     the same JVP with torch_fwdad disabled (PyTorch's own forward mode), ÷ primal,
            or "fails: <error>";
  compiled  torch.compile of the JVP ÷ torch.compile of the primal (torch_fwdad installed),
            or "fails: <error>".
Then the top 5 aten ops by self CPU time in each torch_fwdad JVP (torch.profiler).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import subprocess
import sys

import torch
from torch import nn
from torch.utils.benchmark import Timer

import torch_fwdad


class ConvBlock(nn.Module):
    """conv-bn-relu-conv-bn plus the identity, then relu (a ResNet basic block)."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return torch.relu(x + self.body(x))


def build_models(d_model, length, batch, small):
    """name -> (module, input, inference): inference modules run in eval mode under no_grad."""
    torch.manual_seed(0)
    heads, channels, side = (2, 8, 8) if small else (8, 64, 32)
    layer = lambda: nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, batch_first=True)  # noqa: E731
    tokens = torch.randn(batch, length, d_model)
    lstm_size = 16 if small else 256
    lstm = nn.LSTM(lstm_size, lstm_size, 2, batch_first=True)
    sequence = torch.randn(batch, length // 4, lstm_size)
    return {
        f"encoder layer d={d_model} L={length} B={batch}, eval+no_grad": (layer().eval(), tokens, True),
        f"encoder layer d={d_model} L={length} B={batch}, train": (layer().train(), tokens, False),
        f"LSTM 2x{lstm_size}, T={length // 4}, B={batch}, eval+no_grad":
            (lstm.eval(), sequence, True),
        f"LSTM 2x{lstm_size}, T={length // 4}, B={batch}, train": (copy.deepcopy(lstm).train(), sequence, False),
        f"conv stack 4 blocks, {batch}x{channels}x{side}x{side}, eval+no_grad":
            (nn.Sequential(*[ConvBlock(channels) for _ in range(4)]).eval(), torch.randn(batch, channels, side, side), True),
        # the same eval layer with grad enabled: the unfused modules, PyTorch's own forward
        # formulas (its JVP time is the one to compare with the eval+no_grad row's)
        f"encoder layer d={d_model} L={length} B={batch}, eval, grad enabled (unfused)": (layer().eval(), tokens, False),
    }


def first_output(module):
    """The module as a function of its input returning one tensor (LSTM returns a tuple)."""
    def fn(x):
        out = module(x)
        return out[0] if isinstance(out, tuple) else out
    return fn


def seconds(fn, min_run_time):
    return Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def describe_failure(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    detail = lines[0][:90] + (f" ... {lines[-1][:120]}" if len(lines) > 1 else "")
    return f"fails: {type(error).__name__}: {detail}"


def measure(name, module, x, inference, args):
    grad_mode = torch.no_grad if inference else contextlib.nullcontext
    fn, tangent = first_output(module), torch.randn_like(x)
    primal = lambda: fn(x)  # noqa: E731
    jvp = lambda: torch.func.jvp(fn, (x,), (tangent,))  # noqa: E731
    with grad_mode():
        primal_s = seconds(primal, args.min_run_time)
        fwdad_s = seconds(jvp, args.min_run_time)
        torch_fwdad.disable()
        try:
            jvp()
            plain = f"{seconds(jvp, args.min_run_time) / primal_s:6.2f}x"
        except Exception as error:  # noqa: BLE001 - reporting whatever plain PyTorch raises
            plain = describe_failure(error)
        finally:
            torch_fwdad.enable()
    print(f"{name}\n  primal {primal_s * 1e3:9.2f} ms | fwdad jvp {fwdad_s * 1e3:9.2f} ms = {fwdad_s / primal_s:6.2f}x"
          f" | plain PyTorch: {plain}")
    return fwdad_s / primal_s


def compiled_in_subprocess(index, name, args):
    """One process per model: a failed trace can leave forward AD's level entered for good."""
    command = [sys.executable, __file__, "--compiled-only", str(index), "--compile", args.compile,
               "--d-model", str(args.d_model), "--length", str(args.length), "--batch", str(args.batch),
               "--min-run-time", str(args.min_run_time)] + (["--small"] if args.small else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.compile_timeout)
        lines = [line for line in done.stdout.splitlines() if "compiled (" in line]
        print(f"{name}\n{lines[-1] if lines else '  compiled: process failed: ' + done.stderr.strip()[-200:]}")
    except subprocess.TimeoutExpired:
        print(f"{name}\n  compiled ({args.compile}): not finished within {args.compile_timeout} s")


def compiled_ratio(name, module, x, inference, args):
    """torch.compile'd JVP ÷ torch.compile'd primal, torch_fwdad installed."""
    fn, tangent = first_output(module), torch.randn_like(x)
    torch._dynamo.reset()
    with torch.no_grad() if inference else contextlib.nullcontext():
        try:
            compiled_primal = torch.compile(lambda: fn(x), backend=args.compile)
            compiled_jvp = torch.compile(lambda: torch.func.jvp(fn, (x,), (tangent,)), backend=args.compile)
            compiled_primal(), compiled_jvp()  # compile outside the timing
            ratio = f"{seconds(compiled_jvp, args.min_run_time) / seconds(compiled_primal, args.min_run_time):6.2f}x"
        except Exception as error:  # noqa: BLE001 - reporting whatever torch.compile raises
            ratio = describe_failure(error)
    print(f"{name}\n  compiled ({args.compile}) jvp / primal: {ratio}")


def top_ops(name, module, x, inference, count=5):
    fn, tangent = first_output(module), torch.randn_like(x)
    with torch.no_grad() if inference else contextlib.nullcontext():
        torch.func.jvp(fn, (x,), (tangent,))  # warm up
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            torch.func.jvp(fn, (x,), (tangent,))
    events = sorted(profile.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    print(f"{name}: top {count} ops by self CPU time in the torch_fwdad JVP")
    for event in events[:count]:
        print(f"  {event.key:45s} {event.self_cpu_time_total / 1e3:9.2f} ms  {100 * event.self_cpu_time_total / total:5.1f}%"
              f"  ({event.count} calls)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--small", action="store_true", help="tiny LSTM and conv stack (smoke runs)")
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--compile", default="inductor", help="torch.compile backend, or 'none'")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--compile-timeout", type=float, default=900, help="seconds per model's compiled run")
    parser.add_argument("--compiled-only", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compiled_only is not None:
        name, spec = list(build_models(args.d_model, args.length, args.batch, args.small).items())[args.compiled_only]
        compiled_ratio(name, *spec, args)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU; "
          f"ratios are JVP time / primal time of the same model, measured side by side")
    models = build_models(args.d_model, args.length, args.batch, args.small)
    ratios = {name: measure(name, *spec, args) for name, spec in models.items()}
    names = list(models)
    for model, (eval_name, train_name) in (("encoder layer", names[0:2]), ("LSTM", names[2:4])):
        verdict = "holds" if ratios[eval_name] <= ratios[train_name] else "does NOT hold"
        print(f"target '{model} JVP/primal in eval+no_grad <= in train': {ratios[eval_name]:.2f}x vs "
              f"{ratios[train_name]:.2f}x, {verdict}")
    if args.compile != "none":
        for index, name in enumerate(models):
            compiled_in_subprocess(index, name, args)
    if not args.no_profile:
        for name, spec in models.items():
            top_ops(name, *spec)


if __name__ == "__main__":
    main()
