"""python tools/new_formula.py "<overload>": scaffold a forward formula for an aten overload.

Writes the derivatives.yaml entry (schema copied from the installed torch, torch's own
backward formulas as comments to transpose) into the section of its family, a sample
generator stub in torch_fwdad/testing/samples/<family>.py, and prints the next steps.
Refuses an overload that already has forward AD upstream or in derivatives.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import torch
from torch._library.utils import is_tensor_like_type, is_tensorlist_like_type

from torch_fwdad.engine.schema import output_names
from torch_fwdad.engine.upstream import resolve_overload
from torch_fwdad.report.table import backward_formulas, family_of, has_forward_upstream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # codegen is repository tooling, not part of the installed package
from codegen.parse import SECTION, compose  # noqa: E402  (the one reader of derivatives.yaml)

NOT_IMPLEMENTED = re.compile(r"""not_implemented\(["'](.*)["']\)$""")

# Report family -> (start of the derivatives.yaml section title, samples/formulas module).
PLACES = {
    "backward ops": ("backward ops", "backward_ops"),
    "linear algebra": ("linear algebra", "linalg"),
    "distances": ("distances", "distance"),
    "losses": ("losses", "losses"),
    "indexing and reductions": ("indexing and reductions", "indexing"),
    "attention": ("attention", "attention"),
    "special functions": ("special functions", "special"),
    "sampling": ("vision and embeddings", "vision"),
}
MISC = ("convolutions, RNN cells, quantisation, sparse, misc", "misc")

SAMPLES_HEADER = '''"""Samples for {family} entries."""

import torch

from . import ErrorSample, Sample, make, samples_for
'''


class Refused(Exception):
    pass


def overload_name(text: str) -> str:
    """"aten::foo.bar", "foo.bar" or a whole schema "foo.bar(Tensor self) -> Tensor" -> "foo.bar"."""
    return text.strip().removeprefix("aten::").split("(", 1)[0].strip()


def check_wanted(name: str, yaml_text: str) -> torch._ops.OpOverload:
    op = resolve_overload(f"aten::{name}")
    if op is None:
        raise Refused(f"torch {torch.__version__} has no overload aten::{name}; "
                      f"overloads of it: {_overloads_of(name.split('.')[0])}")
    for entry in compose(yaml_text):
        if entry.overload == name:
            raise Refused(f"{name} already has a forward formula in {entry.location}")
    upstream = has_forward_upstream(name)
    if upstream:
        raise Refused(f"torch {torch.__version__} already has a forward formula for {name} "
                      f"(torchgen/packaged/autograd/derivatives.yaml); torch_fwdad never replaces one "
                      f"unless it is wrong (see 'corrects_upstream' in the derivatives.yaml header)")
    if upstream is None:
        raise Refused(f"{name} is not in torch's derivatives table, so autograd reaches it through its "
                      f"decomposition and forward mode follows that decomposition: find the op inside "
                      f"it that fails (python -m torch_fwdad report --ops ...) and scaffold that one")
    return op


def _overloads_of(packet: str) -> str:
    ops = getattr(torch.ops.aten, packet, None)
    return ", ".join(ops.overloads()) if ops is not None else "none"


def yaml_entry(name: str, op) -> str:
    schema = str(op._schema).split("::", 1)[1]
    backward = backward_formulas(name)
    tensors = {a.name for a in op._schema.arguments if is_tensor_like_type(a.type) or is_tensorlist_like_type(a.type)}
    inputs = {key: formula for key, formula in backward.items() if key in tensors}
    lines = [f"# TODO(new_formula.py): the JVP of {name}. torch's backward, to transpose:"]
    lines += [f"#   {key}: {formula}" for key, formula in backward.items()]
    lines.append(f"- name: {schema}")
    tensor_outputs = [n for n, r in zip(output_names(op._schema), op._schema.returns) if is_tensor_like_type(r.type)]
    for output in tensor_outputs:
        lines.append(f"  {output}:")
        lines += [f"    {arg}: {_term(arg, formula, output)}" for arg, formula in inputs.items()]
    return "\n".join(lines) + "\n"


def _term(argument: str, backward: str, output: str) -> str:
    """The scaffolded value of an input's key: torch's own keyword where its backward has
    one (non_differentiable, not_implemented), else a placeholder codegen refuses."""
    if backward == "non_differentiable":
        return "non_differentiable"
    refused = NOT_IMPLEMENTED.match(backward)
    if refused:
        return "{not_implemented: " + json.dumps(f"PyTorch's backward does not implement it: {refused.group(1)}") + "}"
    return f"TODO_{argument}_term_of_{output}({argument}_t, {argument}_p)"


def insert_entry(yaml_text: str, entry: str, section: str) -> tuple[str, int]:
    """The text with `entry` at the end of `section` (a new section at the end if none), and its `- name:` line."""
    lines = yaml_text.splitlines()
    start = next((i for i, l in enumerate(lines) if SECTION.match(l) and SECTION.match(l).group(1).startswith(section)), None)
    if start is None:
        lines += ["", f"# {'-' * 64} {section}"]
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if SECTION.match(lines[i])), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    spacer = [""] if end < len(lines) and lines[end].strip() else []
    entry_lines = entry.rstrip("\n").splitlines()
    new_lines = lines[:end] + [""] + entry_lines + spacer + lines[end:]
    name_line = end + 2 + next(i for i, l in enumerate(entry_lines) if l.startswith("- name:"))
    return "\n".join(new_lines).rstrip("\n") + "\n", name_line


PLACEHOLDERS = {"int": "1", "SymInt": "1", "float": "1.0", "bool": "False", "str": "'sum'", "Scalar": "1.0",
                "List[int]": "[1]", "List[SymInt]": "[1]"}


def _placeholder(argument, differentiable: set[str]) -> str:
    """A value of the argument's type for the stub; integer tensors stand for indices."""
    kind = argument.type
    if is_tensor_like_type(kind) or is_tensorlist_like_type(kind):
        if argument.name in differentiable:
            tensor = "make(3, 3, dtype=dtype, device=device)"
        elif isinstance(kind, torch._C.OptionalType):
            return "None"
        else:
            tensor = "torch.zeros(3, dtype=torch.long, device=device)"
        return f"[{tensor}]" if is_tensorlist_like_type(kind) else tensor
    return PLACEHOLDERS.get(str(kind), "None")


def samples_stub(name: str, op) -> str:
    differentiable = {k for k, f in backward_formulas(name).items() if f != "non_differentiable"}
    required = [a for a in op._schema.arguments if not a.has_default_value()]
    args = [f"{_placeholder(a, differentiable)}" for a in required if not a.kwarg_only]
    kwargs = {a.name: _placeholder(a, differentiable) for a in required if a.kwarg_only}
    kwargs_text = f", {{{', '.join(f'{k!r}: {v}' for k, v in kwargs.items())}}}" if kwargs else ""
    function = name.replace(".", "_").lstrip("_") + "_samples"
    return f'''

@samples_for("aten::{name}")  # TODO(new_formula.py): dtypes=(torch.float64, torch.complex128) if complex works; errors=
def {function}(dtype, device):
    # TODO(new_formula.py): shapes and values reaching every branch of the formula (ties,
    # empty and batched inputs, every mode argument); placeholders below are not enough.
    yield Sample(({", ".join(args)}{"," if len(args) == 1 else ""}){kwargs_text}, desc="TODO")
'''


def place_for(name: str) -> tuple[str, str]:
    return PLACES.get(family_of(name), MISC)


def scaffold(text: str, root: str = ROOT) -> list[str]:
    """Write the entry and the samples stub; returns the next steps to print."""
    name = overload_name(text)
    yaml_path = os.path.join(root, "derivatives.yaml")
    with open(yaml_path, encoding="utf-8") as file:
        yaml_text = file.read()
    op = check_wanted(name, yaml_text)
    section, module = place_for(name)
    new_yaml, line = insert_entry(yaml_text, yaml_entry(name, op), section)
    samples_path = os.path.join(root, "torch_fwdad", "testing", "samples", f"{module}.py")
    existing = open(samples_path, encoding="utf-8").read() if os.path.exists(samples_path) else SAMPLES_HEADER.format(family=section)
    with open(yaml_path, "w", encoding="utf-8") as file:
        file.write(new_yaml)
    with open(samples_path, "w", encoding="utf-8") as file:
        file.write(existing.rstrip("\n") + "\n" + samples_stub(name, op))
    samples_rel = os.path.relpath(samples_path, root)
    return [
        f"1. Write the JVP in derivatives.yaml:{line} (torch's backward is in the comment above it; "
        f"helpers go in torch_fwdad/formulas/{module}.py, listed in its __all__). See CONTRIBUTING.md.",
        f"2. Make the samples in {samples_rel} reach every branch (and set dtypes/errors).",
        f"3. python -m codegen && python -m pytest tests/test_formulas.py -k {name.split('.')[0]} "
        f"&& python -m torch_fwdad report --ops aten::{name}",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/new_formula.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overload", help='"_cdist_backward", "aten::special_zeta.self_scalar" or a whole schema')
    parser.add_argument("--root", default=ROOT, help="repository to write into (default: this one)")
    args = parser.parse_args(argv)
    try:
        steps = scaffold(args.overload, args.root)
    except Refused as refusal:
        print(f"refused: {refusal}", file=sys.stderr)
        return 1
    print(f"scaffolded {overload_name(args.overload)}. Next:")
    for step in steps:
        print(f"  {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
