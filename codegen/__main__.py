"""python -m codegen [--check]: regenerate torch_fwdad/_generated and docs/reference.md from derivatives.yaml."""

from __future__ import annotations

import argparse
import os
import sys

from .docs import emit_reference, python_registrations, status_for
from .emit import emit_module
from .facts import formula_helpers, has_upstream_forward, torch_version
from .model import DerivativesError
from .parse import REFERENCE_TORCH, load, on_reference_torch, version_notes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "derivatives.yaml")
TARGET = os.path.join(ROOT, "torch_fwdad", "_generated", "jvp_rules.py")
REFERENCE = os.path.join(ROOT, "docs", "reference.md")


def generate() -> dict[str, str]:
    """Path -> content of every generated file."""
    helpers = formula_helpers()
    entries = load(SOURCE, helpers)
    return {TARGET: emit_module(entries, helpers), REFERENCE: reference(entries)}


def reference(entries) -> str:
    with open(SOURCE, encoding="utf-8") as file:
        yaml_text = file.read()
    version = torch_version()
    status = {e.name: status_for(e, has_upstream_forward(e.name), version) for e in entries}
    rules = python_registrations(os.path.join(ROOT, "torch_fwdad", "formulas"), ROOT)
    return emit_reference(entries, yaml_text, version, status, rules)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when the checked-in output is stale")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # so locations read "derivatives.yaml:LINE"
    try:
        outputs = generate()
    except DerivativesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for location, problem in version_notes.items():
        print(f"skipped on torch {torch_version()}: {location}: {problem}", file=sys.stderr)
    if not on_reference_torch():
        # docs/reference.md states what applies to the reference torch; only the rules are compared.
        print(f"note: {os.path.relpath(REFERENCE, ROOT)} describes torch {REFERENCE_TORCH} and is not "
              f"compared on torch {torch_version()}", file=sys.stderr)
        outputs.pop(REFERENCE)
    stale = [path for path, text in outputs.items() if _read(path) != text]
    if args.check:
        for path in stale:
            print(f"stale: {os.path.relpath(path, ROOT)}; run `python -m codegen` and commit the result", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as file:
            file.write(outputs[path])
        print(f"wrote {os.path.relpath(path, ROOT)}")
    if not stale:
        print("generated code is up to date")
    return 0


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except FileNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
