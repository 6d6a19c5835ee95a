"""Every derivatives.yaml entry x every sample x every check of the matrix."""

import pytest
import torch

import torch_fwdad
from torch_fwdad._generated.jvp_rules import ENTRIES
from torch_fwdad.engine.upstream import resolve_overload
from torch_fwdad.testing import CHECKS, expected_failure, plain_pytorch, sample_registry
from torch_fwdad.testing.checks import check_same_error

SOURCES = sample_registry()
INSTALLED = {rule.name for rule in torch_fwdad.registered_ops()}


def _cases():
    for entry in ENTRIES:
        source = SOURCES.get(entry.name)
        if source is None or entry.name not in INSTALLED or not source.cpu_runnable:
            continue
        for dtype in source.dtypes:
            for index, sample in enumerate(source.generate(dtype, "cpu")):
                for check in CHECKS:
                    marks = []
                    reason = expected_failure(entry.name, check, sample)
                    if reason:
                        marks.append(pytest.mark.xfail(reason=reason, strict=True))
                    case_id = f"{entry.name.split('::')[1]}-{str(dtype).split('.')[1]}-{index}-{sample.desc}-{check}"
                    yield pytest.param(entry.name, sample, check, id=case_id.replace(" ", "_"), marks=marks)


@pytest.mark.parametrize("name, sample, check", list(_cases()))
def test_formula(name, sample, check):
    CHECKS[check](resolve_overload(name), sample)


def _error_cases():
    for name, source in SOURCES.items():
        if source.errors is not None and name in INSTALLED and source.cpu_runnable:
            for sample in source.errors("cpu"):
                yield pytest.param(name, sample, id=f"{name.split('::')[1]}-{sample.desc}".replace(" ", "_"))


@pytest.mark.parametrize("name, sample", list(_error_cases()))
def test_bad_input_fails_like_upstream(name, sample):
    check_same_error(resolve_overload(name), sample)


OURS = {name: source for name, source in SOURCES.items() if source.upstream_covers is None}
UPSTREAM = {name: source for name, source in SOURCES.items() if source.upstream_covers is not None}


def test_every_entry_has_samples_and_every_sampler_an_entry():
    # report-only samples (upstream_covers) go with no entry: they are checked below
    entries = {entry.name for entry in ENTRIES}
    assert entries - OURS.keys() == set(), "entries without a sample generator"
    assert OURS.keys() - entries == set(), "sample generators without an entry"
    assert UPSTREAM.keys() & entries == set(), "covered upstream: derivatives.yaml must not add a formula"


def _upstream_cases():
    for name, source in UPSTREAM.items():
        for dtype in source.dtypes:
            for index, sample in enumerate(source.generate(dtype, "cpu")):
                check = "jvp_vjp" if expected_failure(name, "gradcheck", sample) else "gradcheck"
                case_id = f"{name.split('::')[1]}-{index}-{sample.desc}-{check}".replace(" ", "_")
                yield pytest.param(name, sample, check, id=case_id)


@pytest.mark.parametrize("name, sample, check", list(_upstream_cases()))
def test_upstream_covers_without_torch_fwdad(name, sample, check):
    """A report-only sample passes the report's check with torch_fwdad disabled: torch covers the gap."""
    with plain_pytorch():
        CHECKS[check](resolve_overload(name), sample)


def test_every_expected_failure_names_a_check():
    # an expected failure of a check that does not exist would never be run, so never found stale
    named = {(name, check) for name, source in SOURCES.items() for check in source.xfails}
    named |= {(name, check) for name, source in SOURCES.items() for dtype in source.dtypes
              for sample in source.generate(dtype, "cpu") for check in sample.xfails}
    assert {(name, check) for name, check in named if check not in CHECKS} == set()


def test_every_entry_is_installed_on_this_torch():
    # torch 2.13 lacks every formula we ship; a skip here means the entry is dead weight
    # or the upstream check misfires.
    assert {name: status for name, status in torch_fwdad.builtin_status.items() if status != "installed"} == {}
