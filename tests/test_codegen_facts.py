"""codegen reads a few facts without importing torch_fwdad (its generated code may be stale
while codegen runs); these tests import the runtime and check both agree."""

import os

import pytest

import torch_fwdad.formulas
from codegen import facts
from codegen.parse import load
from torch_fwdad.engine import upstream
from torch_fwdad.engine.schema import OpSignature

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def entries():
    return load(os.path.join(ROOT, "derivatives.yaml"))


def test_helper_names_read_from_source_are_the_packages_exports():
    assert facts.formula_helpers() == frozenset(torch_fwdad.formulas.__all__)


def test_forward_formula_table_matches_the_engines_reader():
    assert facts.upstream_forward_table() == upstream.upstream_forward_table()


def test_each_entry_reads_the_same_as_the_engine(entries):
    for entry in entries:
        op = upstream.resolve_overload(entry.name)
        assert op is not None, entry.name
        signature = OpSignature.from_schema(op._schema)
        assert entry.outputs == signature.output_names, entry.name
        assert tuple(i for i, a in enumerate(entry.arguments) if a.is_tensor) == signature.tensor_args, entry.name
        assert tuple(i for i, a in enumerate(entry.arguments) if a.is_tensor_list) == signature.tensor_list_args, entry.name
        assert facts.installed_schema(entry.name) == str(op._schema).split("::", 1)[1], entry.name
        assert facts.has_upstream_forward(entry.name) == upstream.has_upstream_forward_ad(op), entry.name
