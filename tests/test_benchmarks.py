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
    "bench_engine": (["--points", "64", "--dim", "8", "--min-run-time", "0.01"], ["one-dual", "floor"]),
    "bench_compile": (["--backend", "aot_eager", "--points", "16", "--length", "8", "--min-run-time", "0.01"], ["jvp/primal", "attention"]),
    "bench_grid_sample": (["--min-run-time", "0.01"], ["2-d bilinear", "3-d nearest"]),
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
