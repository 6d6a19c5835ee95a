"""The coverage report: crash isolation, a small real run, baselines, rendering, the tables it reads."""

import fnmatch
import io
import json
import xml.etree.ElementTree as ElementTree

import pytest
import torch

from torch_fwdad import report
from torch_fwdad.report import opinfo, runner, table
from torch_fwdad.report.progress import Progress
from torch_fwdad.report.results import annotate_documented_gaps, regressions
from torch_fwdad.report.runner import Task, run_tasks
from torch_fwdad.report.status import ERROR, EXCLUDED, NOT_IMPLEMENTED, PASS


def test_a_crashing_hanging_or_greedy_op_does_not_stop_the_others():
    names = ["pass", "crash", "pass", "hang", "pass", "memory", "exit", "pass"]
    tasks = [Task("probe", name, "without", samples=i) for i, name in enumerate(names)]  # samples: unique tasks
    results = run_tasks(tasks, jobs=1, timeout_s=5, memory_mb=2048)
    statuses = [results[t]["status"] for t in tasks]
    assert statuses == [PASS, ERROR, PASS, ERROR, PASS, ERROR, ERROR, PASS]
    details = {name: results[t]["detail"] for name, t in zip(names, tasks)}
    assert "SIGABRT" in details["crash"]
    assert "timed out after 5 s" in details["hang"]
    assert "out of memory" in details["memory"]
    assert "exit code 3" in details["exit"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """cholesky (fixed by torch_fwdad), float (excluded by nature), mul (passes upstream)."""
    out = tmp_path_factory.mktemp("report")
    code = report.main(["--ops", "cholesky,float,mul,aten::cholesky", "--jobs", "2", "--output", str(out)])
    assert code == 0
    return out, json.loads((out / "coverage.json").read_text())


def test_small_run_classifies_without_and_with(small_run):
    _, data = small_run
    ops = data["results"]["opinfo"]
    assert (ops["cholesky"]["without"]["status"], ops["cholesky"]["with"]["status"]) == (NOT_IMPLEMENTED, PASS)
    assert "Trying to use forward AD" in ops["cholesky"]["without"]["detail"]
    assert ops["float"]["with"]["status"] == EXCLUDED and "lower precision" in ops["float"]["with"]["detail"]
    assert (ops["mul"]["without"]["status"], ops["mul"]["with"]["status"]) == (PASS, PASS)
    gap = data["results"]["table"]["aten::cholesky"]
    assert (gap["without"]["status"], gap["with"]["status"]) == (NOT_IMPLEMENTED, PASS)
    assert data["summary"]["opinfo"] == {"entries": 3, "excluded": 1, "checked": 2, "without": 1, "with": 2}


def test_small_run_writes_markdown_and_svg(small_run):
    out, data = small_run
    markdown = (out / "coverage.md").read_text()
    assert "OpInfo 1/2 → 2/2 with torch_fwdad (1 excluded)" in markdown
    assert "| `cholesky` | not implemented | pass |" in markdown
    svg = ElementTree.fromstring((out / "coverage.svg").read_text())
    assert svg.tag.endswith("svg")


def test_baseline_drop_exits_nonzero(small_run, tmp_path):
    _, data = small_run
    data["results"]["opinfo"]["float"]["with"] = {"status": PASS, "detail": "", "seconds": 0}
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(data))
    args = ["--ops", "float", "--jobs", "1", "--output", str(tmp_path / "out"), "--baseline", str(baseline)]
    assert report.main(args) == 1


def test_regressions_are_drops_with_torch_fwdad_only():
    def run(without, with_):
        item = {"family": "torch", "without": {"status": without, "detail": ""}, "with": {"status": with_, "detail": "boom"}}
        return {"complete": False, "results": {"opinfo": {"cdist": item}}, "summary": {}}

    assert regressions(run(NOT_IMPLEMENTED, ERROR), run(NOT_IMPLEMENTED, PASS)) == ["OpInfo cdist: pass → error (boom)"]
    assert regressions(run(PASS, PASS), run(NOT_IMPLEMENTED, NOT_IMPLEMENTED)) == []
    assert regressions(run(ERROR, PASS), run(PASS, PASS)) == []  # upstream changes are not ours


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    task = Task("opinfo", "cdist", "with")
    plain, bar = io.StringIO(), io.StringIO()
    Progress(2, plain, tty=False).update(task, {"status": PASS})
    Progress(2, bar, tty=True).update(task, {"status": PASS})
    assert plain.getvalue() == "[1/2] opinfo cdist (with): pass\n"
    assert bar.getvalue().startswith("\r[###############...............] 1/2")


def test_table_reads_forward_formulas_keyed_by_output_names():
    assert table.has_forward_upstream("sort.stable") is True  # "values: ..." is a forward formula
    assert table.has_forward_upstream("cholesky") is False
    assert table.has_forward_upstream("not_an_op") is None
    assert table.derivatives_table()["aten::cudnn_convolution"].out_of_reach == "cuDNN kernel"
    assert "aten::_cdist_backward" in table.gap_entries()


def test_lower_precision_casts_are_excluded_by_nature():
    x = torch.randn(3, dtype=torch.float64)
    assert "lower precision" in opinfo.nature_of(lambda t: t.float(), [x])
    assert opinfo.nature_of(lambda t: t * 2, [x]) is None
    assert "random" in opinfo.nature_of(lambda t: t + torch.rand(3, dtype=torch.float64), [x])


def test_a_worker_that_cannot_start_fails_its_tasks_fast(monkeypatch):
    # as when torch_fwdad itself fails to import: one failed start, not one per task
    monkeypatch.setattr(runner, "BOOTSTRAP", "import sys; print('ImportError: broken', file=sys.stderr); sys.exit(1)")
    tasks = [Task("probe", "pass", "with", samples=i) for i in range(3)]
    results = run_tasks(tasks, jobs=1, timeout_s=5, memory_mb=2048)
    assert [results[t]["detail"] for t in tasks] == [
        "no worker could start: worker crashed (exit code 1) while starting: ImportError: broken"] * 3
    assert {results[t]["status"] for t in tasks} == {ERROR}


def test_reasons_come_from_the_projects_out_of_reach_table():
    pattern, reason = table.documented_gaps()[0]
    assert table.documented_reason(pattern.replace("*", "x")) == reason
    assert table.documented_reason("add.Tensor") is None


# one overload per row of the doc's backend-only table: dropping a row fails here
@pytest.mark.parametrize("overload", [
    "cudnn_convolution", "_scaled_dot_product_cudnn_attention", "miopen_convolution", "mkldnn_convolution",
    "_mps_convolution", "_nested_view_from_jagged", "to_padded_tensor", "_nnpack_spatial_convolution",
    "convolution_overrideable", "_test_warn_in_autograd", "_pin_memory"])
def test_backend_only_overloads_are_excluded_with_the_docs_reason(overload):
    entry = table.derivatives_table()[f"aten::{overload}"]
    doc_reason = next(reason for pattern, reason in table.out_of_reach_patterns()
                      if fnmatch.fnmatchcase(overload, pattern))
    assert entry.family == "out of reach" and entry.out_of_reach == doc_reason


def test_a_not_closed_row_counts_with_its_documented_reason():
    entry = table.gap_entries()["aten::geqrf"]
    assert entry.out_of_reach is None and entry.family == "linear algebra"
    assert table.documented_reason("geqrf") == dict(table.documented_gaps())["geqrf"]
    items = {"aten::geqrf": {"with": {"status": NOT_IMPLEMENTED, "detail": "measured"}}}
    annotate_documented_gaps(items)
    assert items["aten::geqrf"]["with"]["detail"].startswith("measured; docs/out_of_reach.md: PyTorch's backward is")


def test_no_counted_row_of_the_doc_names_a_backend_only_overload():
    # a name in both tables would read as counted while the report leaves it out
    both = [name for name, entry in table.derivatives_table().items()
            if entry.out_of_reach and table.documented_reason(entry.overload)]
    assert both == []


def test_the_report_stops_without_its_out_of_reach_doc(tmp_path):
    with pytest.raises(FileNotFoundError, match="out of reach"):
        table.read_doc_rows(str(tmp_path / "out_of_reach.md"))


def test_backend_only_rows_are_read_from_their_table_only(tmp_path):
    doc = tmp_path / "out_of_reach.md"
    doc.write_text(f"## {table.BACKEND_ONLY_HEADING}\n\n| pattern | reason | e.g. |\n|---|---|---|\n"
                   "| `*cudnn*` | cuDNN kernel | `cudnn_convolution` |\n\n## Not closed\n\n| overload | reason |\n"
                   "|---|---|\n| `geqrf`, `unique_dim` | no convention |\n", encoding="utf-8")
    assert table.read_doc_rows(str(doc)) == ((table.BACKEND_ONLY_HEADING, "*cudnn*", "cuDNN kernel"),
                                             ("Not closed", "geqrf", "no convention"),
                                             ("Not closed", "unique_dim", "no convention"))


def test_what_finite_differences_cannot_judge_is_not_counted_as_a_pass():
    # NaN primal (__rpow__ with a negative base): not measured, excluded
    status, detail = opinfo.check("__rpow__", 3)
    assert status == EXCLUDED and "NaN" in detail
    # a tangent asked of a sparse CSR input: not representable, excluded with the doc's reason
    status, detail = opinfo.check("sparse.mm.reduce", 3)
    assert status == EXCLUDED and "sparse_csr" in detail and "docs/out_of_reach.md" in detail
    assert opinfo.sparse_inputs([torch.randn(2, 2, dtype=torch.float64)]) is None


def test_float32_inputs_are_checked_in_double():
    # cov's OpInfo passes float32 aweights: finite differences with a 1e-6 step cannot resolve a
    # float32 input (forward mode agreed with reverse mode and with float64 differences)
    x, w = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float32, requires_grad=True)
    upcast, positions = opinfo.upcast_inputs([x, w], torch.float64)
    assert positions == [1] and upcast[1].dtype == torch.float64 and upcast[1].requires_grad
    status, detail = opinfo.check("cov", 3)
    assert status == PASS and "sample 2: input 1 upcast to double" in detail
