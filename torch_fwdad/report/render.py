"""The report as JSON (machines), Markdown (CI job summaries, PRs) and an SVG chart."""

from __future__ import annotations

import json
import os
from html import escape

from .results import (COLUMN_TITLES, FORWARD, MODES, PART_TITLES, by_family, cell_status, columns_of, regressions,
                      summary_line)
from .status import EXCLUDED, PASS

FILES = {"json": "coverage.json", "markdown": "coverage.md", "svg": "coverage.svg"}


def write_all(report: dict, directory: str) -> dict[str, str]:
    os.makedirs(directory, exist_ok=True)
    paths = {kind: os.path.join(directory, name) for kind, name in FILES.items()}
    texts = {"json": to_json(report), "markdown": to_markdown(report), "svg": to_svg(report)}
    for kind, path in paths.items():
        with open(path, "w", encoding="utf-8") as file:
            file.write(texts[kind])
    return paths


def to_json(report: dict) -> str:
    return json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _detail(item: dict) -> str:
    """The detail of the first column that does not pass with torch_fwdad, else of the first without."""
    columns = item["columns"]
    for wanted in ("with", "without"):
        for column, cell in columns.items():
            if cell[wanted]["status"] != PASS:
                label = "" if column == FORWARD else f"{COLUMN_TITLES[column]}{'' if wanted == 'with' else ' (without)'}: "
                return _escape(label + cell[wanted]["detail"])
    return ""


def _pair(cell: dict) -> str:
    without, with_ = cell["without"]["status"], cell["with"]["status"]
    return without if without == with_ else f"{without} → {with_}"


HOW = {
    "opinfo": "First {samples} samples per entry in double precision, gradcheck with forward AD only",
    "second_order": "Forward-over-reverse (torch.func.jvp of torch.func.vjp; forward_ad make_dual + "
                    "autograd.grad(create_graph=True) + unpack_dual) against central differences of the VJP in "
                    "float64, along random directions of inputs and cotangents; vmap over torch.func.jvp with "
                    "batched primals and tangents against a Python loop. Same samples, wrappers and exclusions as "
                    "the OpInfo table",
    "modules": "Small modules (torch_fwdad/testing/modules.py): jvp w.r.t. the input and w.r.t. the parameters "
               "(train mode), eval + no_grad with parameters not requiring grad (tangents on input and parameters: "
               "the inference fast paths), and forward_ad make_dual on input and parameters; tangents against "
               "central differences of the module in float64 (the float32 LSTM against its float64 copy)",
}


def _part_markdown(part: str, items: dict, settings: dict) -> list[str]:
    columns = columns_of(part)
    lines = [f"## {PART_TITLES[part]}", ""]
    if part in HOW:
        lines += [HOW[part].format(**settings) + ".", ""]
    if columns == (FORWARD,):
        lines += ["| family | checked | without torch_fwdad | with torch_fwdad |", "|---|---:|---:|---:|"]
        for family, counts in by_family(items).items():
            lines.append(f"| {family} | {counts['checked']} | {counts['without']} | {counts['with']} |")
    else:
        lines += ["| family | " + " | ".join(f"{COLUMN_TITLES[c]} (without → with)" for c in columns) + " |",
                  "|---|" + "---:|" * len(columns)]
        per_column = {column: by_family(items, column) for column in columns}
        for family in sorted({f for counts in per_column.values() for f in counts}):
            cells = []
            for column in columns:
                counts = per_column[column].get(family, {"checked": 0, "without": 0, "with": 0})
                cells.append(f"{counts['without']}/{counts['checked']} → {counts['with']}/{counts['checked']}")
            lines.append(f"| {family} | " + " | ".join(cells) + " |")
    titles = ["without", "with"] if columns == (FORWARD,) else [COLUMN_TITLES[c] for c in columns]
    lines += ["", "| entry | " + " | ".join(titles) + " | detail |", "|---|" + "---|" * (len(titles) + 1)]
    all_pass = lambda item: all(c[m]["status"] == PASS for c in item["columns"].values() for m in MODES)  # noqa: E731
    for name, item in items.items():
        if all_pass(item):
            continue
        if columns == (FORWARD,):
            cell = item["columns"][FORWARD]
            statuses = [cell["without"]["status"], cell["with"]["status"]]
        else:
            statuses = [_pair(item["columns"][c]) for c in columns]
        lines.append(f"| `{name}` | " + " | ".join(statuses) + f" | {_detail(item)} |")
    passing = sorted(n for n, item in items.items() if all_pass(item))
    if passing:
        what = "" if columns == (FORWARD,) else " in every column"
        lines += ["", f"<details><summary>{len(passing)} entries pass with and without torch_fwdad{what}</summary>", "",
                  ", ".join(f"`{n}`" for n in passing), "", "</details>"]
    lines.append("")
    return lines


def to_markdown(report: dict) -> str:
    lines = ["# Forward-mode AD coverage", "", f"**{summary_line(report)}**", ""]
    settings = report["settings"]
    lines += [f"Each entry and column in a worker process (timeout {settings['timeout_s']:g} s, "
              f"memory {settings['memory_mb']} MiB). Cells read `without → with` torch_fwdad where they differ. "
              f"Regenerate: `{settings['command']}`.", ""]
    found = regressions(report)
    lines += ["## Regressions: works without torch_fwdad, fails with it", ""]
    lines += [f"- {_escape(line)}" for line in found] or ["None."]
    lines.append("")
    if report["complete"] and "table" in report["summary"]:
        upstream = report["summary"]["table"][FORWARD].get("upstream_formulas", 0)
        lines += [f"Derivatives table: {upstream} entries have torch's own forward formula and are counted "
                  f"as covered (OpInfo exercises them); the gaps below are checked with our sample generators.", ""]
    for part, items in report["results"].items():
        lines += _part_markdown(part, items, settings)
    return "\n".join(lines)


ROW_H, LABEL_W, BAR_W, PAD = 22, 190, 360, 10
COLORS = {"without": "#b0b0b0", "with": "#2e8b57"}


def _rows(report: dict) -> list[tuple[str, str, dict | None]]:
    """Per family for one-column parts; per column, all families together, for the others."""
    rows = []
    for part, items in report["results"].items():
        rows.append(("title", PART_TITLES[part], None))
        if columns_of(part) == (FORWARD,):
            rows += [("bar", family, counts) for family, counts in by_family(items).items()]
        else:
            for column in columns_of(part):
                counts = report["summary"][part][column]
                rows.append(("bar", COLUMN_TITLES[column], counts))
    return rows


def to_svg(report: dict) -> str:
    """Horizontal bars: share passing without (grey) and with torch_fwdad (green)."""
    rows = _rows(report)
    title, _, pieces = summary_line(report).partition(": ")
    header = [title + ":"] + pieces.split("; ")
    height = PAD * 2 + ROW_H * (len(header) + len(rows) + 2)
    width = LABEL_W + BAR_W + 170
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for index, line in enumerate(header):
        weight = ' font-weight="bold"' if index == 0 else ""
        out.append(f'<text x="{PAD}" y="{PAD + 14 + index * ROW_H}"{weight}>{escape(line)}</text>')
    y = PAD + ROW_H * (len(header) + 1)
    for kind, label, counts in rows:
        if kind == "title":
            out.append(f'<text x="{PAD}" y="{y + 15}" font-weight="bold">{escape(label)}</text>')
        else:
            out.append(f'<text x="{PAD}" y="{y + 15}">{escape(label)}</text>')
            out.append(f'<rect x="{LABEL_W}" y="{y + 3}" width="{BAR_W}" height="{ROW_H - 6}" fill="#eeeeee"/>')
            for mode in ("with", "without"):  # grey drawn over green: green shows what torch_fwdad adds
                share = counts[mode] / counts["checked"] if counts["checked"] else 0
                out.append(f'<rect x="{LABEL_W}" y="{y + 3}" width="{BAR_W * share:.1f}" height="{ROW_H - 6}" fill="{COLORS[mode]}"/>')
            out.append(f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 15}">{counts["without"]}/{counts["checked"]} → {counts["with"]}/{counts["checked"]}</text>')
        y += ROW_H
    legend_y = y + 8
    for offset, mode in enumerate(MODES):
        x = PAD + offset * 220
        out.append(f'<rect x="{x}" y="{legend_y}" width="12" height="12" fill="{COLORS[mode]}"/>')
        out.append(f'<text x="{x + 18}" y="{legend_y + 11}">passing {mode} torch_fwdad</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def excluded_table(report: dict) -> list[tuple[str, str, str]]:
    """(part, entry, reason) of every exclusion, for the summary printed at the end (one per entry)."""
    found = []
    for part, items in report["results"].items():
        for name, item in items.items():
            cell = next((c for c in item["columns"].values() if cell_status(c) == EXCLUDED), None)
            if cell:
                reason = cell["with"]["detail"] if cell["with"]["status"] == EXCLUDED else cell["without"]["detail"]
                found.append((part, name, reason))
    return found
