"""The benchmark scripts still run (tiny sizes, short timings): they are how the
figures in the docs are measured, so a change that breaks one should fail here."""

import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMOKE_RUNS = {
    "bench_attention": (["--lengths", "32", "--min-run-time", "0.01"], ["fwdad/primal", "q only", "floor"]),
    "bench_cdist": (["--points", "64", "--dim", "8", "--min-run-time", "0.01"], ["floor"]),
    "bench_compile": (["--backend", "aot_eager", "--points", "16", "--length", "8", "--min-run-time", "0.01"], ["jvp/primal", "attention"]),
    "bench_engine": (["--points", "64", "--dim", "8", "--min-run-time", "0.01", "--rounds", "1"], ["one-dual", "floor", "tangent path"]),
    "bench_grid_sample": (["--small", "--min-run-time", "0.01", "--rounds", "1"], ["2-d bilinear", "3-d nearest", "floor"]),
    "bench_hvp": (["--shape", "1", "2", "16", "8", "--min-run-time", "0.01"], ["ratio forward_ad / torch.func"]),
    "bench_models": (["--d-model", "16", "--length", "8", "--batch", "2", "--small", "--min-run-time", "0.01",
                      "--compile", "none", "--no-profile"], ["eval+no_grad", "plain PyTorch: fails", "target"]),
    "cuda_attention_check": ([], ["no CUDA device"]),  # on CPU: says so and exits 0
}


@pytest.mark.parametrize("script", SMOKE_RUNS)
def test_benchmark_runs(script):
    if script == "cuda_attention_check" and torch.cuda.is_available():
        pytest.skip("with a GPU this script is the full CUDA check itself: run it directly")
    arguments, expected = SMOKE_RUNS[script]
    done = subprocess.run([sys.executable, os.path.join("benchmarks", f"{script}.py"), *arguments],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for text in expected:
        assert text in done.stdout, f"{text!r} missing from:\n{done.stdout}"


def test_attention_contention_table_runs_and_stops_its_busy_process():
    arguments = ["--lengths", "32", "--min-run-time", "0.01", "--rounds", "1", "--contention"]
    done = subprocess.run([sys.executable, os.path.join("benchmarks", "bench_attention.py"), *arguments],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for text in ("quiet ms", "loaded ms", "python tiles, one thread", "blockwise tiles (before)", "÷floor"):
        assert text in done.stdout, f"{text!r} missing from:\n{done.stdout}"
    spinning = subprocess.run(["pgrep", "-f", "while time.monotonic"], capture_output=True, text=True, timeout=30)
    assert spinning.stdout == "", "the busy process outlived the benchmark"
