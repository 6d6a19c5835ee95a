"""Reverse over forward through every OpInfo entry, with and without torch_fwdad.

For each entry (float64 samples, through op.gradcheck_wrapper, as the coverage report's
OpInfo part), the gradient of <w, J(x) v> with respect to x and v, dotted with random
directions, against central differences of the tangent <w, J v> (forward mode only): once
with autograd beneath torch.func.jvp, once with autograd.grad over forward_ad.make_dual.
"wrong" means reverse mode through the forward formula is silently wrong; "error" that it
raises. Each entry and flavour runs in a worker process of the report's runner (a timeout
and a memory limit per task, a crash or hang replaces the worker); "without" workers run
with every rule of torch_fwdad taken off (plain PyTorch).

    python tools/rev_over_fwd_sweep.py --jobs 2 --output docs/coverage/rev_over_fwd.json
    python tools/rev_over_fwd_sweep.py --ops 'nn.functional.layer_norm,linalg.det'
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from torch_fwdad.report import opinfo, second_order  # noqa: E402
from torch_fwdad.report.progress import Progress  # noqa: E402
from torch_fwdad.report.runner import Task, default_memory_mb, run_tasks  # noqa: E402
from torch_fwdad.report.status import PASS, WRONG  # noqa: E402

MODES = ("without", "with")


def entries(patterns: list[str] | None) -> list[str]:
    """OpInfo entries with forward AD upstream, and those torch_fwdad gives it (all with autograd)."""
    keys = sorted(opinfo.opinfos())
    if patterns:
        keys = [k for k in keys if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    return keys


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", help="comma-separated OpInfo entries or globs")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--samples", type=int, default=3, help="samples per entry (default 3)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per entry, flavour and mode")
    parser.add_argument("--memory-mb", type=int, default=default_memory_mb(), help="address-space limit per worker")
    parser.add_argument("--output", default="rev_over_fwd.json", help="JSON results, rewritten as tasks finish")
    parser.add_argument("--markdown", help="also write the findings as a Markdown table here")
    return parser.parse_args(argv)


def findings(results: dict) -> dict[str, list]:
    """Entries whose gradient is wrong or raises, without and with torch_fwdad."""
    found = {f"{status}_{mode}": [] for status in ("wrong", "error") for mode in MODES}
    for key, columns in sorted(results.items()):
        for column, cells in sorted(columns.items()):
            for mode, cell in cells.items():
                if cell["status"] == WRONG:
                    found[f"wrong_{mode}"].append([key, column, cell["detail"]])
                elif cell["status"] not in (PASS, "excluded"):
                    found[f"error_{mode}"].append([key, column, cell["status"], cell["detail"]])
    return found


FLAVOURS = {"rev_over_fwd_func": "autograd beneath torch.func.jvp (x and v require grad)",
            "rev_over_fwd_forward_ad": "autograd.grad over forward_ad.make_dual (x requires grad, v constant)"}


def markdown(results: dict, settings: dict) -> str:
    """Entries where the gradient of the tangent is wrong or raises, without and with torch_fwdad."""
    lines = [f"# Reverse over forward through OpInfo (torch {torch.__version__})", "",
             f"Written by `{settings['command']}` ({settings.get('seconds', '?')} s); "
             "the JSON beside this file has every entry. Flavours:", ""]
    lines += [f"- `{column}`: {text}" for column, text in FLAVOURS.items()]
    lines += ["", "| entry | flavour | without torch_fwdad | with torch_fwdad |", "|---|---|---|---|"]
    for key, columns in sorted(results.items()):
        for column, cells in sorted(columns.items()):
            statuses = [cells.get(mode, {}).get("status") for mode in MODES]
            if all(s in (PASS, "excluded", "not implemented") for s in statuses):
                continue
            cell = [f"{cells[m]['status']}: {cells[m]['detail']}".replace("|", "/") for m in MODES]
            lines.append(f"| {key} | {column.removeprefix('rev_over_fwd_')} | {cell[0]} | {cell[1]} |")
    return "\n".join(lines) + "\n"


def write(path: str, results: dict, settings: dict, complete: bool) -> None:
    document = {"torch": torch.__version__, "complete": complete, "settings": settings,
                "findings": findings(results), "results": results}
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=1, sort_keys=True)
        file.write("\n")
    os.replace(temporary, path)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    keys = entries([p.strip() for p in args.ops.split(",")] if args.ops else None)
    tasks = [Task("second_order", key, mode, args.samples, column)
             for key in keys for column in second_order.REV_OVER_FWD for mode in MODES]
    settings = {"samples": args.samples, "timeout_s": args.timeout, "memory_mb": args.memory_mb, "jobs": args.jobs,
                "command": "python tools/rev_over_fwd_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    results: dict = {}
    progress = Progress(len(tasks))
    start = time.monotonic()

    def on_result(task, result):
        progress.update(task, result)
        results.setdefault(task.name, {}).setdefault(task.column, {})[task.mode] = result
        if progress.done % 50 == 0:
            write(args.output, results, settings, complete=False)

    run_tasks(tasks, jobs=args.jobs, timeout_s=args.timeout, memory_mb=args.memory_mb, on_result=on_result)
    settings["seconds"] = round(time.monotonic() - start, 1)
    write(args.output, results, settings, complete=True)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as file:
            file.write(markdown(results, settings))
    for kind, rows in findings(results).items():
        print(f"{kind}: {len(rows)}")
        for row in rows:
            print("  " + " | ".join(map(str, row)))
    print(f"wrote {args.output} in {settings['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
