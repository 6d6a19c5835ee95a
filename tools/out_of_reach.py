"""python tools/out_of_reach.py [--check]: ship docs/out_of_reach.md's tables with the package.

docs/out_of_reach.md is the one place the reasons are written. The coverage report reads
them in an installed package, which has no docs/, so this script copies the tables' rows
into torch_fwdad/report/out_of_reach.json (package data). `--check` exits 1 when that
file is stale; tests/test_report.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "out_of_reach.md")
DATA = os.path.join(ROOT, "torch_fwdad", "report", "out_of_reach.json")
# The doc's table of overloads left out of the count; its other tables give reasons only.
BACKEND_ONLY_HEADING = "Backend-only: excluded from the coverage count"
# | `name`, `glob*` (prose) | reason | optional third cell, not read |
_DOC_ROW = re.compile(r"^\|(?P<names>[^|]*`[^|]*)\|(?P<reason>[^|]+)\|(?:[^|]*\|)?\s*$")


def read_doc_rows(path: str) -> tuple[tuple[str, str, str], ...]:
    """(heading, overload or glob, reason) for each name in backticks in a table row's first cell."""
    if not os.path.exists(path):
        # No fallback: without the doc, backend-only overloads would silently count as gaps.
        raise FileNotFoundError(f"{path} is missing: the coverage report's list of what is out of reach "
                                "is copied from it")
    rows, heading = [], ""
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            row = _DOC_ROW.match(line)
            if row:
                reason = " ".join(row.group("reason").split())
                rows += [(heading, name, reason) for name in re.findall(r"`([\w.*]+)`", row.group("names"))]
    return tuple(rows)


def package_data(rows: tuple[tuple[str, str, str], ...]) -> dict:
    """What torch_fwdad/report/table.py reads: backend-only globs, and the other tables' reasons."""
    backend_only = [[name, reason] for heading, name, reason in rows if heading == BACKEND_ONLY_HEADING]
    if not backend_only:  # a renamed heading would otherwise count every backend-only overload
        raise ValueError(f"docs/out_of_reach.md has no table under '## {BACKEND_ONLY_HEADING}'")
    return {
        "generated_by": "tools/out_of_reach.py from docs/out_of_reach.md: edit the doc and rerun, not this file",
        "backend_only": backend_only,
        "documented": [[name, reason] for heading, name, reason in rows if heading != BACKEND_ONLY_HEADING],
    }


def render(data: dict) -> str:
    """JSON with one [name, reason] pair a line, so a diff shows the rows that changed."""
    def pairs(rows):
        return "[\n" + ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in rows) + "\n ]"

    return ('{\n "generated_by": ' + json.dumps(data["generated_by"]) + ",\n"
            f' "backend_only": {pairs(data["backend_only"])},\n "documented": {pairs(data["documented"])}\n}}\n')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the package data is stale")
    args = parser.parse_args(argv)
    text = render(package_data(read_doc_rows(DOC)))
    if args.check:
        with open(DATA, encoding="utf-8") as file:
            if file.read() != text:
                print(f"{os.path.relpath(DATA, ROOT)} is stale: run python tools/out_of_reach.py", file=sys.stderr)
                return 1
        return 0
    with open(DATA, "w", encoding="utf-8") as file:
        file.write(text)
    print(f"wrote {os.path.relpath(DATA, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
