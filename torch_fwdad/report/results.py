"""From task results to the report: per-entry statuses by column, the summary, regressions."""

from __future__ import annotations

import collections

import torch

from . import modules, opinfo, second_order, table
from .runner import Task
from .status import EXCLUDED, PASS

FORMAT = 2  # 2: every entry has columns (format 1 had one "without"/"with" pair per entry)
MODES = ("without", "with")
FORWARD = "forward"
# part -> its title and its columns: what is checked of each entry, with and without torch_fwdad
PARTS = {
    "opinfo": ("OpInfo", (FORWARD,)),
    "table": ("derivatives table", (FORWARD,)),
    "second_order": ("second order (OpInfo entries with supports_gradgrad)", second_order.COLUMNS),
    "modules": ("torch.nn modules with parameters", modules.COLUMNS),
}
PART_TITLES = {part: title for part, (title, _) in PARTS.items()}
COLUMN_TITLES = {FORWARD: "forward AD", **second_order.COLUMN_TITLES, **modules.COLUMN_TITLES}
FAMILIES = {"opinfo": opinfo.family_of, "second_order": opinfo.family_of, "modules": modules.family_of,
            "table": lambda name: table.derivatives_table()[name].family}


def columns_of(part: str) -> tuple[str, ...]:
    return PARTS[part][1]


def cell_status(cell: dict) -> str:
    """An entry excluded in either run is excluded; the runs agree on it in practice."""
    return EXCLUDED if EXCLUDED in (cell["without"]["status"], cell["with"]["status"]) else cell["with"]["status"]


def assemble(results: dict[Task, dict], selected: dict[str, list[str]], restricted_by: str | None, settings: dict) -> dict:
    """restricted_by: None for the full run, else the option that narrowed it ("--ops", "--quick")."""
    parts = {}
    for part, names in selected.items():
        parts[part] = {
            name: {"family": FAMILIES[part](name),
                   "columns": {column: {mode: results[Task(part, name, mode, settings["samples"], column)] for mode in MODES}
                               for column in columns_of(part)}}
            for name in sorted(names)
        }
        if part != "modules":
            annotate_documented_gaps(parts[part])
    report = {"format": FORMAT, "torch": torch.__version__, "complete": restricted_by is None,
              "restricted_by": restricted_by, "settings": settings, "results": parts}
    report["summary"] = summarize(report)
    return report


def annotate_documented_gaps(items: dict) -> None:
    """A failing entry named in docs/out_of_reach.md keeps its measured status and gets the written reason."""
    for name, item in items.items():
        reason = table.documented_reason(name.removeprefix("aten::"))
        for cell in item["columns"].values():
            if reason and cell["with"]["status"] not in (PASS, EXCLUDED):
                cell["with"] = {**cell["with"], "detail": f"{cell['with']['detail']}; docs/out_of_reach.md: {reason}"}


def summarize(report: dict) -> dict:
    """part -> column -> {"entries", "excluded", "checked", "without", "with"}."""
    summary = {}
    for part, items in report["results"].items():
        summary[part] = {}
        for column in columns_of(part):
            cells = [item["columns"][column] for item in items.values()]
            excluded = sum(cell_status(c) == EXCLUDED for c in cells)
            counts = {"entries": len(cells), "excluded": excluded, "checked": len(cells) - excluded}
            for mode in MODES:
                counts[mode] = sum(c[mode]["status"] == PASS for c in cells)
            if part == "table" and report["complete"]:
                # entries with torch's own forward formula are counted, not re-checked (OpInfo checks them)
                upstream = sum(e.has_forward for e in table.derivatives_table().values())
                counts.update(upstream_formulas=upstream, checked=counts["checked"] + upstream,
                              without=counts["without"] + upstream, **{"with": counts["with"] + upstream})
            summary[part][column] = counts
    return summary


def _counts_text(counts: dict) -> str:
    return f"{counts['without']}/{counts['checked']} → {counts['with']}/{counts['checked']}"


def summary_pieces(report: dict) -> list[str]:
    pieces = []
    for part, by_column in report["summary"].items():
        if columns_of(part) == (FORWARD,):
            counts = by_column[FORWARD]
            title = PART_TITLES[part] + ("" if report["complete"] or part == "opinfo" else " gaps")
            piece = f"{title} {_counts_text(counts)}" + (" with torch_fwdad" if part == "opinfo" else "")
            if counts["excluded"]:
                piece += f" ({counts['excluded']} excluded)"
        else:
            piece = f"{PARTS[part][0].split(' (')[0]}: " + ", ".join(
                f"{COLUMN_TITLES[column]} {_counts_text(counts)}" for column, counts in by_column.items())
        pieces.append(piece)
    return pieces


def summary_line(report: dict) -> str:
    scope = "" if report["complete"] else f" (restricted by {report.get('restricted_by') or '--ops'})"
    return f"forward AD coverage, torch {report['torch']}{scope}: " + "; ".join(summary_pieces(report))


def by_family(items: dict, column: str = FORWARD) -> dict[str, dict]:
    """family -> {"checked", "without", "with"} over the entries that are not excluded in `column`."""
    families: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for item in items.values():
        cell = item["columns"][column]
        if cell_status(cell) == EXCLUDED:
            continue
        counter = families[item["family"]]
        counter["checked"] += 1
        for mode in MODES:
            counter[mode] += cell[mode]["status"] == PASS
    return {family: dict(families[family]) for family in sorted(families)}


def _where(part: str, name: str, column: str) -> str:
    return f"{PART_TITLES[part]} {name}" + ("" if column == FORWARD else f" [{COLUMN_TITLES[column]}]")


def regressions(report: dict, baseline: dict | None = None) -> list[str]:
    """Every cell that works without torch_fwdad and fails with it, in this run; with a
    baseline, also every cell that passed with torch_fwdad there and does not now."""
    found = []
    baseline = baseline or {}
    for part, items in report["results"].items():
        before = baseline.get("results", {}).get(part, {})
        for name, item in items.items():
            for column, cell in item["columns"].items():
                now = cell["with"]["status"]
                if now == PASS:
                    continue
                was = before.get(name, {}).get("columns", {}).get(column, {}).get("with", {}).get("status")
                if cell["without"]["status"] == PASS:
                    found.append(f"{_where(part, name, column)}: works without torch_fwdad, {now} with it "
                                 f"({cell['with']['detail']})")
                elif was == PASS:
                    found.append(f"{_where(part, name, column)}: {was} → {now} ({cell['with']['detail']})")
    if report["complete"] and baseline.get("complete"):
        for part, by_column in report["summary"].items():
            for column, counts in by_column.items():
                old = baseline.get("summary", {}).get(part, {}).get(column, {}).get("with")
                if old is not None and counts["with"] < old:
                    found.append(f"{_where(part, 'coverage', column)} with torch_fwdad dropped: {old} → {counts['with']}")
    return found
