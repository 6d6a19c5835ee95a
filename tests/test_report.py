"""The coverage report: crash isolation, a small real run, baselines, rendering, the tables it reads."""

import fnmatch
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
import torch

from torch.autograd.gradcheck import GradcheckError

from torch_fwdad import report
from torch_fwdad.report import modules, opinfo, runner, second_order, table
from torch_fwdad.report.progress import Progress
from torch_fwdad.report.results import annotate_documented_gaps, regressions
from torch_fwdad.report.runner import Task, run_tasks
from torch_fwdad.report.status import ERROR, EXCLUDED, NOT_IMPLEMENTED, PASS, WRONG
from torch_fwdad.testing.modules import MODULE_CASES, NOT_LAYERS, torch_nn_classes_with_parameters

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import out_of_reach  # noqa: E402  (tools/out_of_reach.py: docs/out_of_reach.md -> package data)


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


def test_a_without_worker_runs_no_rule_of_ours():
    tasks = [Task("probe", "rules", mode) for mode in ("without", "with")]
    results = run_tasks(tasks, jobs=1, timeout_s=60, memory_mb=8192)
    without, with_ = (results[t]["detail"] for t in tasks)
    assert without == "0 rules active"
    # counted in a fresh interpreter, as the worker runs: this process's count also holds the
    # rules other tests installed (lazily installed distributed rules, registered custom ops)
    fresh = subprocess.run([sys.executable, "-c", "import torch_fwdad; print(len(torch_fwdad.registered_ops()))"],
                           capture_output=True, text=True, timeout=120, check=True)
    assert int(with_.split()[0]) == int(fresh.stdout) > 0


def _statuses(cell):
    return cell["without"]["status"], cell["with"]["status"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """cholesky (fixed by torch_fwdad), float (excluded by nature), mul (passes upstream), in every
    part: OpInfo, derivatives table, second order (cholesky, mul) and modules (Linear, LSTM.float32)."""
    out = tmp_path_factory.mktemp("report")
    code = report.main(["--ops", "cholesky,float,mul,aten::cholesky,Linear,utils.weight_norm(Conv1d)",
                        "--jobs", "2", "--output", str(out)])
    assert code == 0
    return out, json.loads((out / "coverage.json").read_text())


def test_small_run_classifies_without_and_with(small_run):
    _, data = small_run
    ops = {name: item["columns"]["forward"] for name, item in data["results"]["opinfo"].items()}
    assert _statuses(ops["cholesky"]) == (NOT_IMPLEMENTED, PASS)
    assert "Trying to use forward AD" in ops["cholesky"]["without"]["detail"]
    assert ops["float"]["with"]["status"] == EXCLUDED and "lower precision" in ops["float"]["with"]["detail"]
    assert _statuses(ops["mul"]) == (PASS, PASS)
    gap = data["results"]["table"]["aten::cholesky"]["columns"]["forward"]
    assert _statuses(gap) == (NOT_IMPLEMENTED, PASS)
    assert data["summary"]["opinfo"]["forward"] == {"entries": 3, "excluded": 1, "checked": 2, "without": 1, "with": 2}


def test_small_run_has_the_second_order_columns(small_run):
    _, data = small_run
    second = data["results"]["second_order"]
    assert sorted(second) == ["cholesky", "float", "mul"]  # every entry of --ops with supports_gradgrad
    for column in second_order.COLUMNS:
        assert _statuses(second["mul"]["columns"][column]) == (PASS, PASS)
        assert "NotImplementedError" in second["cholesky"]["columns"][column]["without"]["detail"]
        assert second["float"]["columns"][column]["with"]["status"] == EXCLUDED
    # torch.func's forward-over-reverse and vmap over the JVP work through torch_fwdad's rule
    assert second["cholesky"]["columns"]["jvp_of_vjp"]["with"]["status"] == PASS
    assert second["cholesky"]["columns"]["vmap_of_jvp"]["with"]["status"] == PASS


def test_small_run_has_the_module_table(small_run):
    _, data = small_run
    mods = data["results"]["modules"]
    assert sorted(mods) == ["Linear", "utils.weight_norm(Conv1d)"]
    for column in modules.COLUMNS:
        assert _statuses(mods["Linear"]["columns"][column]) == (PASS, PASS)
    # _weight_norm_interface has no forward formula upstream: parameter tangents need torch_fwdad
    weight_norm = mods["utils.weight_norm(Conv1d)"]["columns"]
    assert _statuses(weight_norm["jvp_input"]) == (PASS, PASS)
    assert _statuses(weight_norm["jvp_params"]) == (NOT_IMPLEMENTED, PASS)
    assert "_weight_norm_interface" in weight_norm["jvp_params"]["without"]["detail"]


def test_small_run_writes_markdown_and_svg(small_run):
    out, data = small_run
    markdown = (out / "coverage.md").read_text()
    assert "OpInfo 1/2 → 2/2 with torch_fwdad (1 excluded)" in markdown
    assert "| `cholesky` | not implemented | pass |" in markdown
    assert "| `cholesky` | not implemented → pass |" in markdown  # second order: one cell per column
    assert "| `utils.weight_norm(Conv1d)` | pass | not implemented → pass |" in markdown
    assert "## Regressions: works without torch_fwdad, fails with it\n\nNone." in markdown
    svg = ElementTree.fromstring((out / "coverage.svg").read_text())
    assert svg.tag.endswith("svg")
    texts = {t.text for t in svg.iter() if t.tag.endswith("text")}
    assert {"jvp(vjp) torch.func", "forward_ad over reverse", "vmap(jvp)", "eval + no_grad"} <= texts


def test_baseline_drop_in_any_column_exits_nonzero(tmp_path, capsys):
    # a baseline in which torch_fwdad made cells pass that this run finds excluded, one per table
    dropped = [("opinfo", "float", "forward"), ("second_order", "float", "forward_ad_of_vjp"),
               ("modules", "Embedding", "jvp_input")]  # Embedding: indices only, excluded now
    results = {}
    for part, name, column in dropped:
        results.setdefault(part, {})[name] = {"columns": {column: {"with": {"status": PASS}}}}
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"format": report.FORMAT, "results": results}))
    args = ["--ops", "float,Embedding", "--part", "opinfo", "--part", "second_order", "--part", "modules",
            "--jobs", "2", "--output", str(tmp_path / "out"), "--baseline", str(baseline)]
    assert report.main(args) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("REGRESSION")]
    assert len(lines) == 3
    assert any("OpInfo float: pass → excluded" in x for x in lines)
    assert any("float [forward_ad over reverse]: pass → excluded" in x for x in lines)
    assert any("Embedding [jvp wrt input]: pass → excluded" in x for x in lines)


def test_a_baseline_of_another_format_is_refused(tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"format": 1, "results": {}}))
    with pytest.raises(SystemExit, match="format 1"):
        report.main(["--ops", "float", "--baseline", str(baseline), "--output", str(tmp_path / "out")])


def _report(part, column, without, with_, was=None):
    cell = {"without": {"status": without, "detail": ""}, "with": {"status": with_, "detail": "boom"}}
    columns = {c: {"without": {"status": PASS, "detail": ""}, "with": {"status": PASS, "detail": ""}}
               for c in report.columns_of(part)}
    columns[column] = cell
    return {"complete": False, "results": {part: {"entry": {"family": "torch", "columns": columns}}}, "summary": {}}


def test_regressions_are_drops_with_torch_fwdad_only():
    before = _report("opinfo", "forward", NOT_IMPLEMENTED, PASS)
    assert regressions(_report("opinfo", "forward", NOT_IMPLEMENTED, ERROR), before) == [
        "OpInfo entry: pass → error (boom)"]
    assert regressions(_report("opinfo", "forward", PASS, PASS),
                       _report("opinfo", "forward", NOT_IMPLEMENTED, NOT_IMPLEMENTED)) == []
    assert regressions(_report("opinfo", "forward", ERROR, PASS), _report("opinfo", "forward", PASS, PASS)) == []


@pytest.mark.parametrize("part", ["opinfo", "table", "second_order", "modules"])
def test_every_column_that_works_without_and_fails_with_is_a_regression(part):
    # no baseline needed: "never worse than plain PyTorch" is a property of one run
    for column in report.columns_of(part):
        for failure in (NOT_IMPLEMENTED, WRONG, ERROR, EXCLUDED):
            found = regressions(_report(part, column, PASS, failure))
            assert len(found) == 1 and "works without torch_fwdad" in found[0] and "boom" in found[0], (column, failure)
        assert regressions(_report(part, column, PASS, PASS)) == []
        assert regressions(_report(part, column, NOT_IMPLEMENTED, ERROR)) == []


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
    items = {"aten::geqrf": {"columns": {"forward": {"with": {"status": NOT_IMPLEMENTED, "detail": "measured"}}}}}
    annotate_documented_gaps(items)
    detail = items["aten::geqrf"]["columns"]["forward"]["with"]["detail"]
    assert detail.startswith("measured; docs/out_of_reach.md: PyTorch's backward is")


def test_no_counted_row_of_the_doc_names_a_backend_only_overload():
    # a name in both tables would read as counted while the report leaves it out
    both = [name for name, entry in table.derivatives_table().items()
            if entry.out_of_reach and table.documented_reason(entry.overload)]
    assert both == []


def test_the_report_stops_without_its_out_of_reach_doc(tmp_path):
    with pytest.raises(FileNotFoundError, match="out of reach"):
        out_of_reach.read_doc_rows(str(tmp_path / "out_of_reach.md"))


def test_the_package_ships_the_docs_out_of_reach_tables():
    # the installed package has no docs/: the report reads a copy, which must not go stale
    assert out_of_reach.main(["--check"]) == 0, "run python tools/out_of_reach.py"
    rows = out_of_reach.read_doc_rows(out_of_reach.DOC)
    assert table.out_of_reach_patterns() == tuple(
        (name, reason) for heading, name, reason in rows if heading == out_of_reach.BACKEND_ONLY_HEADING)
    assert table.documented_gaps() == tuple(
        (name, reason) for heading, name, reason in rows if heading != out_of_reach.BACKEND_ONLY_HEADING)


def test_backend_only_rows_are_read_from_their_table_only(tmp_path):
    doc = tmp_path / "out_of_reach.md"
    doc.write_text(f"## {out_of_reach.BACKEND_ONLY_HEADING}\n\n| pattern | reason | e.g. |\n|---|---|---|\n"
                   "| `*cudnn*` | cuDNN kernel | `cudnn_convolution` |\n\n## Not closed\n\n| overload | reason |\n"
                   "|---|---|\n| `geqrf`, `unique_dim` | no convention |\n", encoding="utf-8")
    assert out_of_reach.read_doc_rows(str(doc)) == ((out_of_reach.BACKEND_ONLY_HEADING, "*cudnn*", "cuDNN kernel"),
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


class _Cube(torch.autograd.Function):
    """x**3 with a correct first derivative; `detached` drops x's dependence from the backward,
    so forward-over-reverse is silently wrong (the _weight_norm_interface kind of bug)."""

    @staticmethod
    def forward(x, detached):
        return x**3

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])
        ctx.detached = inputs[1]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x = x.detach() if ctx.detached else x
        return grad * 3 * x**2, None

    @staticmethod
    def jvp(ctx, x_t, _):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * x_t


@pytest.mark.parametrize("column", ["jvp_of_vjp", "forward_ad_of_vjp"])
def test_forward_over_reverse_columns_catch_a_silently_wrong_second_derivative(column):
    x = torch.rand(4, dtype=torch.float64) + 0.5
    check = second_order.CHECKS[column]
    check(None, lambda t: _Cube.apply(t, False), [x])  # right: passes
    with pytest.raises(GradcheckError, match="finite differences of the VJP"):
        check(None, lambda t: _Cube.apply(t, True), [x])


class _BatchMixing(torch.autograd.Function):
    """2x with a vmap rule that flips the batch: right one sample at a time, wrong batched."""

    generate_vmap_rule = False

    @staticmethod
    def forward(x):
        return 2 * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def jvp(ctx, x_t):
        return 2 * x_t

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad

    @staticmethod
    def vmap(info, in_dims, x):
        return 2 * x.movedim(in_dims[0], 0).flip(0), 0


def test_vmap_column_catches_a_batching_rule_that_disagrees_with_a_loop():
    x = torch.rand(4, dtype=torch.float64)
    second_order.check_vmap_of_jvp(None, lambda t: 2 * t, [x])
    with pytest.raises(GradcheckError, match="vs a loop"):
        second_order.check_vmap_of_jvp(None, _BatchMixing.apply, [x])


def test_second_order_covers_every_opinfo_entry_with_supports_gradgrad():
    from torch.testing._internal.common_methods_invocations import op_db

    expected = {opinfo.key_of(op) for op in op_db if op.supports_autograd and op.supports_gradgrad}
    assert set(second_order.entries()) == expected and len(expected) > 500


def test_module_table_covers_every_torch_nn_class_that_creates_parameters():
    classes = torch_nn_classes_with_parameters()
    assert {"Linear", "LSTM", "MultiheadAttention", "LazyConv2d", "RMSNorm"} <= set(classes)  # the finder finds
    covered = {name.split(".")[0] for name in MODULE_CASES}
    assert [c for c in classes if c not in covered and c not in NOT_LAYERS] == []
    # composites that hold other modules' parameters are there too
    assert {"Transformer", "TransformerEncoderLayer", "AdaptiveLogSoftmaxWithLoss"} <= covered


@pytest.mark.parametrize("name", sorted(MODULE_CASES))
def test_every_module_case_builds_with_parameters_and_runs(name):
    case = MODULE_CASES[name]
    module = case.module(case.dtype)
    assert list(module.parameters()) and all(p.dtype == case.dtype for p in module.parameters())
    inputs = case.inputs(case.dtype, torch.Generator().manual_seed(0))
    assert case.forward(module, *inputs) is not None


@pytest.mark.parametrize("name, kernel", [
    ("TransformerEncoderLayer", "_transformer_encoder_layer_fwd"),
    ("MultiheadAttention", "_native_multi_head_attention"),
    ("TransformerEncoder.padding_mask", "_nested_tensor_from_mask"),
    ("LSTM.float32", "mkldnn_rnn_layer"),
])
def test_the_eval_no_grad_column_reaches_the_fast_paths(name, kernel):
    case = modules.MODULE_CASES[name]
    inputs = case.inputs(case.dtype, torch.Generator().manual_seed(0))
    assert kernel in modules._fast_paths(modules._setup(case, case.dtype, True), inputs, eval_no_grad=True)
    if kernel != "mkldnn_rnn_layer":  # parameters requiring grad in train mode: the slow path
        assert kernel not in modules._fast_paths(modules._setup(case, case.dtype, False), inputs, eval_no_grad=False)


def test_module_columns_catch_a_wrong_tangent(monkeypatch):
    # a module whose tangent is off by a factor: every column reports it as wrong
    assert modules.check("Linear", "jvp_input")[0] == PASS
    real_jvp = torch.func.jvp
    monkeypatch.setattr(torch.func, "jvp", lambda *a, **k: (lambda o, t: (o, tuple(2 * x for x in t)))(*real_jvp(*a, **k)))
    with pytest.raises(GradcheckError, match="finite differences"):
        modules.check("Linear", "jvp_input")


def test_quick_subset_keeps_every_entry_not_passing_everywhere_and_the_fast_path_modules():
    def item(status):
        cell = {"without": {"status": status}, "with": {"status": PASS}}
        return {"columns": {column: cell for column in second_order.COLUMNS}}

    names = [f"op{i:03d}" for i in range(100)]
    baseline = {"results": {"second_order": {n: item(PASS) for n in names}}}
    baseline["results"]["second_order"]["op007"]["columns"] = {
        **item(PASS)["columns"], "vmap_of_jvp": {"without": {"status": ERROR}, "with": {"status": PASS}}}
    baseline["results"]["second_order"]["op008"]["columns"]["jvp_of_vjp"] = {  # a regression in the baseline
        "without": {"status": PASS}, "with": {"status": ERROR}}
    quick = report.quick_subset("second_order", names, baseline)
    assert "op007" in quick and "op008" in quick and "op000" in quick and len(quick) == 2 + 100 // report.QUICK_STRIDE_SECOND_ORDER
    assert "op999" not in report.quick_subset("second_order", names, baseline)
    # an entry the baseline has not seen is checked
    assert "new_op" in report.quick_subset("second_order", names + ["new_op"], baseline)
    quick_modules = report.quick_subset("modules", modules.entries(), baseline)
    assert set(report.QUICK_MODULES) == set(quick_modules)  # every quick module exists
    families = {modules.family_of(n) for n in modules.entries()}
    assert {modules.family_of(n) for n in quick_modules} == families
    for fast_path_module in ("TransformerEncoderLayer", "MultiheadAttention", "TransformerEncoder.padding_mask",
                             "LSTM.float32"):
        assert fast_path_module in quick_modules
