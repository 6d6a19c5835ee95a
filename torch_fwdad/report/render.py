"""The report as JSON (machines), Markdown (CI job summaries, PRs) and an SVG chart by family."""

from __future__ import annotations

import json
import os
from html import escape

from .results import MODES, PART_TITLES, by_family, item_status, summary_line
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


def _cell(result: dict) -> str:
    return result["status"]


def _detail(item: dict) -> str:
    result = item["with"] if item["with"]["status"] != PASS else item["without"]
    return result["detail"].replace("|", "\\|")


def to_markdown(report: dict) -> str:
    lines = ["# Forward-mode AD coverage", "", f"**{summary_line(report)}**", ""]
    settings = report["settings"]
    lines += [f"First {settings['samples']} samples per entry in double precision, gradcheck with forward AD "
              f"only; each op in a worker process (timeout {settings['timeout_s']:g} s, "
              f"memory {settings['memory_mb']} MiB). Regenerate: `{settings['command']}`.", ""]
    if report["complete"] and "table" in report["summary"]:
        upstream = report["summary"]["table"].get("upstream_formulas", 0)
        lines += [f"Derivatives table: {upstream} entries have torch's own forward formula and are counted "
                  f"as covered (OpInfo exercises them); the gaps below are checked with our sample generators.", ""]
    for part, items in report["results"].items():
        lines += [f"## {PART_TITLES[part]}", "", "| family | checked | without torch_fwdad | with torch_fwdad |", "|---|---:|---:|---:|"]
        for family, counts in by_family(items).items():
            lines.append(f"| {family} | {counts['checked']} | {counts['without']} | {counts['with']} |")
        lines += ["", "| entry | without | with | detail |", "|---|---|---|---|"]
        interesting = {n: i for n, i in items.items() if not (i["without"]["status"] == PASS and i["with"]["status"] == PASS)}
        for name, item in interesting.items():
            lines.append(f"| `{name}` | {_cell(item['without'])} | {_cell(item['with'])} | {_detail(item)} |")
        passing = sorted(n for n in items if n not in interesting)
        if passing:
            lines += ["", f"<details><summary>{len(passing)} entries pass with and without torch_fwdad</summary>", "",
                      ", ".join(f"`{n}`" for n in passing), "", "</details>"]
        lines.append("")
    return "\n".join(lines)


ROW_H, LABEL_W, BAR_W, PAD = 22, 190, 360, 10
COLORS = {"without": "#b0b0b0", "with": "#2e8b57"}


def to_svg(report: dict) -> str:
    """Horizontal bars per family: share passing without (grey) and with torch_fwdad (green)."""
    rows = []
    for part, items in report["results"].items():
        rows.append(("title", PART_TITLES[part], None))
        rows += [("family", family, counts) for family, counts in by_family(items).items()]
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
    """(part, entry, reason) of every exclusion, for the summary printed at the end."""
    return [(part, name, item["with"]["detail"] if item["with"]["status"] == EXCLUDED else item["without"]["detail"])
            for part, items in report["results"].items() for name, item in items.items() if item_status(item) == EXCLUDED]
