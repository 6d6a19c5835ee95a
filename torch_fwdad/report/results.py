"""From task results to the report: per-op statuses, the summary, the comparison with a baseline."""

from __future__ import annotations

import collections

import torch

from . import opinfo, table
from .runner import Task
from .status import EXCLUDED, PASS

FORMAT = 1
MODES = ("without", "with")
PART_TITLES = {"opinfo": "OpInfo", "table": "derivatives table"}


def item_status(item: dict) -> str:
    """An entry excluded in either run is excluded; the runs agree on it in practice."""
    return EXCLUDED if EXCLUDED in (item["without"]["status"], item["with"]["status"]) else item["with"]["status"]


def assemble(results: dict[Task, dict], selected: dict[str, list[str]], restricted_by: str | None, settings: dict) -> dict:
    """restricted_by: None for the full run, else the option that narrowed it ("--ops", "--quick")."""
    families = {"opinfo": opinfo.family_of, "table": lambda name: table.derivatives_table()[name].family}
    parts = {}
    for part, names in selected.items():
        parts[part] = {
            name: {"family": families[part](name), **{mode: results[Task(part, name, mode, settings["samples"])] for mode in MODES}}
            for name in sorted(names)
        }
    for items in parts.values():
        annotate_documented_gaps(items)
    report = {"format": FORMAT, "torch": torch.__version__, "complete": restricted_by is None,
              "restricted_by": restricted_by, "settings": settings, "results": parts}
    report["summary"] = summarize(report)
    return report


def annotate_documented_gaps(items: dict) -> None:
    """A failing entry named in docs/out_of_reach.md keeps its measured status and gets the written reason."""
    for name, item in items.items():
        reason = table.documented_reason(name.removeprefix("aten::"))
        if reason and item["with"]["status"] not in (PASS, EXCLUDED):
            item["with"] = {**item["with"], "detail": f"{item['with']['detail']}; docs/out_of_reach.md: {reason}"}


def summarize(report: dict) -> dict:
    summary = {}
    for part, items in report["results"].items():
        excluded = sum(item_status(i) == EXCLUDED for i in items.values())
        counts = {"entries": len(items), "excluded": excluded, "checked": len(items) - excluded}
        for mode in MODES:
            counts[mode] = sum(i[mode]["status"] == PASS for i in items.values())
        if part == "table" and report["complete"]:
            # entries with torch's own forward formula are counted, not re-checked (OpInfo checks them)
            upstream = sum(e.has_forward for e in table.derivatives_table().values())
            counts.update(upstream_formulas=upstream, checked=counts["checked"] + upstream,
                          without=counts["without"] + upstream, **{"with": counts["with"] + upstream})
        summary[part] = counts
    return summary


def summary_line(report: dict) -> str:
    pieces = []
    for part, counts in report["summary"].items():
        title = PART_TITLES[part] + ("" if report["complete"] or part == "opinfo" else " gaps")
        piece = f"{title} {counts['without']}/{counts['checked']} → {counts['with']}/{counts['checked']}"
        if part == "opinfo":
            piece += " with torch_fwdad"
        if counts["excluded"]:
            piece += f" ({counts['excluded']} excluded)"
        pieces.append(piece)
    scope = "" if report["complete"] else f" (restricted by {report.get('restricted_by') or '--ops'})"
    return f"forward AD coverage, torch {report['torch']}{scope}: " + "; ".join(pieces)


def by_family(items: dict) -> dict[str, dict]:
    """family -> {"checked", "without", "with"} over the entries that are not excluded."""
    families: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for item in items.values():
        if item_status(item) == EXCLUDED:
            continue
        counter = families[item["family"]]
        counter["checked"] += 1
        for mode in MODES:
            counter[mode] += item[mode]["status"] == PASS
    return {family: dict(families[family]) for family in sorted(families)}


def regressions(report: dict, baseline: dict) -> list[str]:
    """What passed with torch_fwdad in the baseline and does not now."""
    found = []
    for part, items in report["results"].items():
        before = baseline.get("results", {}).get(part, {})
        for name, item in items.items():
            was = before.get(name, {}).get("with", {}).get("status")
            now = item["with"]["status"]
            if was == PASS and now != PASS:
                found.append(f"{PART_TITLES[part]} {name}: {was} → {now} ({item['with']['detail']})")
    if report["complete"] and baseline.get("complete"):
        for part, counts in report["summary"].items():
            old = baseline.get("summary", {}).get(part, {}).get("with")
            if old is not None and counts["with"] < old:
                found.append(f"{PART_TITLES[part]} coverage with torch_fwdad dropped: {old} → {counts['with']}")
    return found
