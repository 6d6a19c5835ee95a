"""The docs run: docs/tutorial.py top to bottom, and docs/reference.md is what codegen writes."""

import importlib.util
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.py"


def test_tutorial_runs_top_to_bottom(tmp_path):
    """Every cell, in order, in a fresh process (it defines custom ops and toggles torch_fwdad);
    the cells assert their own results. A failure names the line of docs/tutorial.py."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(TUTORIAL), str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"docs/tutorial.py failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib is not installed: skipping the plot" in done.stdout
    else:
        png = tmp_path / "brusselator_coloring.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tutorial_has_the_six_parts():
    headings = [line for line in TUTORIAL.read_text(encoding="utf-8").splitlines() if line.startswith("# ## ")]
    assert [h.split(".")[0] for h in headings] == [f"# ## {n}" for n in range(1, 7)], headings


def test_reference_page_is_fresh():
    done = subprocess.run([sys.executable, "-m", "codegen", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "docs/reference.md" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
