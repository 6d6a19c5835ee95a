"""python -m torch_fwdad report: forward-mode coverage of the installed torch, without and with torch_fwdad.

(a) every OpInfo entry with supports_autograd, forward mode against finite differences;
(b) every overload of torch's derivatives table with a backward and no forward formula,
against our sample generators;
(c) every OpInfo entry with supports_gradgrad, second order: forward-over-reverse under
torch.func and under torch.autograd.forward_ad, and vmap over the JVP (second_order.py);
(d) every torch.nn module with parameters: JVPs w.r.t. input and parameters, in eval +
no_grad, and under forward_ad (modules.py).
Each entry and column runs in a worker process with a timeout and a memory limit (see
runner.py). Writes coverage.json, coverage.md and coverage.svg. A regression (a column that
works without torch_fwdad and fails with it, or that passed in --baseline and fails now)
makes the exit status 1.

Imports: torch_fwdad, testing, engine.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shlex
import sys
import time

from . import modules, opinfo, second_order, table
from .progress import Progress
from .render import excluded_table, write_all
from .results import FORMAT, MODES, PARTS, assemble, columns_of, regressions, summary_line
from .runner import Task, default_memory_mb, run_tasks
from .status import PASS

# --quick's default baseline: the committed report, relative to the checkout it runs in
COMMITTED_REPORT = os.path.join("docs", "coverage", "coverage.json")
QUICK_STRIDE = 10  # --quick checks every 10th OpInfo entry that passes without torch_fwdad
# --quick's second order: every 20th entry that passes in every column with and without
# torch_fwdad (plus every entry that does not); modules: one per family, and every fast path
QUICK_STRIDE_SECOND_ORDER = 20
QUICK_MODULES = ("Linear", "PReLU", "Conv2d", "BatchNorm2d", "LayerNorm", "utils.weight_norm(Conv1d)", "EmbeddingBag",
                 "LSTM", "LSTM.float32", "GRUCell", "MultiheadAttention", "TransformerEncoderLayer",
                 "TransformerEncoder.padding_mask", "Transformer")


def parse_args(argv):
    usage = __doc__.partition("\nImports:")[0]  # the Imports: line is for maintainers (tests/test_imports.py)
    parser = argparse.ArgumentParser(prog="python -m torch_fwdad report", description=usage,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", help="comma-separated entries or globs: cdist,index_reduce.*,aten::_cdist_forward")
    parser.add_argument("--quick", action="store_true",
                        help="CI subset: every entry the baseline shows torch_fwdad fixing, all table gaps, "
                             f"and every {QUICK_STRIDE}th other OpInfo entry")
    parser.add_argument("--baseline", metavar="FILE", help="saved coverage.json; exit 1 when coverage drops against it "
                                                           f"(--quick: default {COMMITTED_REPORT} of the current directory)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)")
    parser.add_argument("--output", default="coverage-report", metavar="DIR", help="where to write the report files")
    parser.add_argument("--samples", type=int, default=3, help="samples per entry (default 3)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per entry and mode (default 120)")
    parser.add_argument("--memory-mb", type=int, default=default_memory_mb(), help="address-space limit per worker")
    parser.add_argument("--part", choices=tuple(PARTS), action="append", help="only this part (repeatable)")
    return parser.parse_args(argv)


def _matches(name: str, patterns: list[str]) -> bool:
    bare = name.removeprefix("aten::")
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(bare, p) for p in patterns)


def select(args, baseline: dict | None) -> dict[str, list[str]]:
    """part -> the entry names this run checks."""
    everything = {"opinfo": sorted(opinfo.opinfos()), "table": sorted(table.gap_entries()),
                  "second_order": second_order.entries(), "modules": modules.entries()}
    parts = args.part or list(everything)
    if args.ops:
        patterns = [p.strip() for p in args.ops.split(",") if p.strip()]
        return {part: [n for n in everything[part] if _matches(n, patterns)] for part in parts}
    if args.quick:
        return {part: quick_subset(part, everything[part], baseline) for part in parts}
    return {part: everything[part] for part in parts}


def quick_subset(part: str, names: list[str], baseline: dict) -> list[str]:
    """Entries that do not pass with and without torch_fwdad in every column of the baseline
    (what torch_fwdad fixes, what still fails, regressions), plus a fixed sample of the rest."""
    if part == "table":
        return [n for n in names if not table.derivatives_table()[n].out_of_reach]
    if part == "modules":
        return [n for n in names if n in QUICK_MODULES]
    before = baseline["results"].get(part, {})

    def passes_everywhere(name):
        columns = before.get(name, {}).get("columns", {})
        return bool(columns) and all(c[mode]["status"] == PASS for c in columns.values() for mode in MODES)

    fixed = [n for n in names if not passes_everywhere(n)]  # fixed by torch_fwdad, failing, or regressed
    others = [n for n in names if n not in fixed]
    return sorted(fixed + others[::QUICK_STRIDE if part == "opinfo" else QUICK_STRIDE_SECOND_ORDER])


def load_baseline(args) -> dict | None:
    path = args.baseline or (COMMITTED_REPORT if args.quick else None)
    if path is None:
        return None
    if not os.path.exists(path):
        raise SystemExit(f"error: no baseline report at {path}; run the full report first")
    with open(path, encoding="utf-8") as file:
        baseline = json.load(file)
    if baseline.get("format") != FORMAT:
        raise SystemExit(f"error: {path} has report format {baseline.get('format')}, this report writes {FORMAT}: "
                         "regenerate the baseline with the full report")
    return baseline


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    baseline = load_baseline(args)
    selected = {part: names for part, names in select(args, baseline).items() if names}
    tasks = [Task(part, name, mode, args.samples, column) for part, names in selected.items() for name in names
             for column in columns_of(part) for mode in MODES]
    if not tasks:
        print("error: --ops matches no OpInfo entry and no derivatives-table gap", file=sys.stderr)
        return 2
    start = time.monotonic()
    progress = Progress(len(tasks))
    results = run_tasks(tasks, jobs=args.jobs, timeout_s=args.timeout, memory_mb=args.memory_mb, on_result=progress.update)
    settings = {"samples": args.samples, "timeout_s": args.timeout, "memory_mb": args.memory_mb, "jobs": args.jobs,
                "command": "python -m torch_fwdad report " + shlex.join(argv if argv is not None else sys.argv[1:]),
                "seconds": round(time.monotonic() - start, 1)}
    restricted_by = "--ops" if args.ops else "--quick" if args.quick else "--part" if args.part else None
    report = assemble(results, selected, restricted_by, settings)
    paths = write_all(report, args.output)
    print(summary_line(report))
    for part, name, reason in excluded_table(report):
        print(f"  excluded: {part} {name}: {reason}")
    print(f"wrote {', '.join(paths.values())} in {settings['seconds']:.0f} s")
    dropped = regressions(report, baseline)
    for line in dropped:
        print(f"REGRESSION: {line}", file=sys.stderr)
    if dropped:
        return 1
    print("no regression" + (" against the baseline" if baseline is not None else "") +
          ": nothing that works without torch_fwdad fails with it")
    return 0
