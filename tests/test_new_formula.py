"""tools/new_formula.py, run against a temporary copy of derivatives.yaml and the samples package."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import new_formula  # noqa: E402

from codegen.parse import compose  # noqa: E402
from torch_fwdad.report.table import gap_entries  # noqa: E402


@pytest.fixture
def repo(tmp_path):
    shutil.copy(os.path.join(ROOT, "derivatives.yaml"), tmp_path / "derivatives.yaml")
    shutil.copytree(os.path.join(ROOT, "torch_fwdad", "testing", "samples"), tmp_path / "torch_fwdad" / "testing" / "samples")
    return tmp_path


def _ours(repo) -> set[str]:
    return {entry.overload for entry in compose((repo / "derivatives.yaml").read_text())}


def _open_gap(repo, family=None) -> str:
    """A gap of torch's table that derivatives.yaml does not fill yet (others keep filling them)."""
    names = sorted(e.overload for e in gap_entries().values()
                   if not e.out_of_reach and (family is None or e.family == family) and e.overload not in _ours(repo))
    if not names:
        pytest.skip("every gap of this family already has an entry")
    return names[0]


def _section_of(yaml_text: str, line_number: int) -> str:
    headers = [new_formula.SECTION.match(l) for l in yaml_text.splitlines()[:line_number]]
    return [h.group(1) for h in headers if h][-1]


def test_scaffolds_entry_in_its_section_and_a_samples_stub(repo):
    name = _open_gap(repo, family="backward ops")
    before = (repo / "derivatives.yaml").read_text()
    steps = new_formula.scaffold(name, str(repo))
    after = (repo / "derivatives.yaml").read_text()

    schema = new_formula.resolve_overload(f"aten::{name}")._schema
    entry_line = next(i for i, l in enumerate(after.splitlines(), 1) if l == f"- name: {str(schema).split('::', 1)[1]}")
    assert _section_of(after, entry_line).startswith("backward ops")
    assert f"derivatives.yaml:{entry_line}" in steps[0]
    assert len(after.splitlines()) > len(before.splitlines())
    assert [e["name"] for e in yaml.safe_load(after)].count(str(schema).split("::", 1)[1]) == 1

    samples = (repo / "torch_fwdad" / "testing" / "samples" / "backward_ops.py").read_text()
    assert f'@samples_for("aten::{name}")' in samples
    compile(samples, "backward_ops.py", "exec")
    assert len(steps) == 3 and "python -m codegen" in steps[2]


def test_placeholder_formulas_stop_codegen_until_written(repo):
    from codegen.model import DerivativesError
    from codegen.parse import parse

    name = _open_gap(repo)
    new_formula.scaffold(name, str(repo))
    with pytest.raises(DerivativesError, match="TODO_"):
        parse((repo / "derivatives.yaml").read_text())


def test_refuses_what_has_forward_ad_already(repo):
    ours = sorted(_ours(repo))[0]
    with pytest.raises(new_formula.Refused, match="already has a forward formula in derivatives.yaml"):
        new_formula.scaffold(ours, str(repo))
    with pytest.raises(new_formula.Refused, match="already has a forward formula for sort.stable"):
        new_formula.scaffold("aten::sort.stable", str(repo))  # torch's formula is keyed "values:"
    with pytest.raises(new_formula.Refused, match="no overload aten::no_such_op"):
        new_formula.scaffold("no_such_op", str(repo))
    with pytest.raises(new_formula.Refused, match="not in torch's derivatives table"):
        new_formula.scaffold("matmul.out", str(repo))
    assert (repo / "derivatives.yaml").read_text() == open(os.path.join(ROOT, "derivatives.yaml")).read()


def test_command_line_prints_next_steps_and_refusals(repo):
    name = _open_gap(repo)
    tool = os.path.join(ROOT, "tools", "new_formula.py")
    done = subprocess.run([sys.executable, tool, name, "--root", str(repo)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^  1\. .*\n  2\. .*\n  3\. ", done.stdout, re.M)
    again = subprocess.run([sys.executable, tool, name, "--root", str(repo)], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 1 and "refused" in again.stderr
