"""Parser and emitter on small inline YAML: one test per error kind, snapshots of the output."""

import subprocess
import sys
import textwrap

import expecttest
import torch

import codegen.parse
from codegen.emit import emit_condition, emit_rule
from codegen.model import DerivativesError
from codegen.parse import parse

HELPERS = frozenset({"add_tangents", "cholesky_jvp", "cdist_jvp"})


def _error(text: str) -> str:
    """The parse error, as on the reference torch (strict schemas), the version written <torch>."""
    reference, codegen.parse.REFERENCE_TORCH = codegen.parse.REFERENCE_TORCH, codegen.parse.torch_version()
    try:
        parse(textwrap.dedent(text), "derivatives.yaml", HELPERS)
    except DerivativesError as error:
        return str(error).replace(torch.__version__, "<torch>")
    finally:
        codegen.parse.REFERENCE_TORCH = reference
    raise AssertionError("no error")


def test_other_torch_notes_schema_differences_instead_of_failing(monkeypatch):
    monkeypatch.setattr(codegen.parse, "REFERENCE_TORCH", "0.0.0")
    monkeypatch.setattr(codegen.parse, "version_notes", {})
    text = """
        - name: cholesky(Tensor self) -> Tensor
          result: self_t
        - name: no_such_op(Tensor self) -> Tensor
          result: self_t
        """
    entries = parse(textwrap.dedent(text), "derivatives.yaml", HELPERS)
    assert [entry.name for entry in entries] == ["aten::cholesky", "aten::no_such_op"]  # still emitted
    notes = {str(location): problem.replace(torch.__version__, "<torch>") for location, problem in codegen.parse.version_notes.items()}
    assert notes == {
        "derivatives.yaml:2": "schema differs from torch <torch>'s; write: cholesky(Tensor self, bool upper=False) -> Tensor",
        "derivatives.yaml:4": "unknown overload aten::no_such_op: torch <torch> has no such operator",
    }


class TestParseErrors(expecttest.TestCase):
    def test_unknown_overload(self):
        actual = _error("""
            - name: no_such_op(Tensor self) -> Tensor
              result: self_t
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:2: unknown overload aten::no_such_op: torch <torch> has no such operator""")

    def test_schema_that_does_not_parse(self):
        actual = _error("""
            - name: cholesky(Tensor self, bool upper=False -> Tensor
              result: self_t
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:2: schema does not parse: expected ) but found 'arrow'""")

    def test_schema_that_differs_from_torch(self):
        actual = _error("""
            - name: cholesky(Tensor self) -> Tensor
              result: self_t
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:2: schema differs from torch <torch>'s; write: cholesky(Tensor self, bool upper=False) -> Tensor""")

    def test_unknown_variable(self):
        actual = _error("""
            - name: cholesky(Tensor self, bool upper=False) -> Tensor
              result: cholesky_jvp(self_t, reslt, upper)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:3: unknown name 'reslt' in formula for 'result'; in scope: result, self_p, self_t, upper, torch, and the helpers of torch_fwdad.formulas""")

    def test_bare_input_name(self):
        actual = _error("""
            - name: cholesky(Tensor self, bool upper=False) -> Tensor
              result: cholesky_jvp(self, result, upper)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:3: 'self' is a Tensor argument: write self_p for its primal or self_t for its tangent""")

    def test_python_syntax_error(self):
        actual = _error("""
            - name: cholesky(Tensor self, bool upper=False) -> Tensor
              result: cholesky_jvp(self_t, result,, upper)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:3: formula for 'result' is not valid Python: invalid syntax: cholesky_jvp(self_t, result,, upper)""")

    def test_duplicate_entry(self):
        actual = _error("""
            - name: cholesky(Tensor self, bool upper=False) -> Tensor
              result: cholesky_jvp(self_t, result, upper)
            - name: cholesky(Tensor self, bool upper=False) -> Tensor
              result: cholesky_jvp(self_t, result, upper)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: duplicate entry for aten::cholesky (first at derivatives.yaml:2)""")

    def test_output_that_does_not_exist(self):
        actual = _error("""
            - name: cholesky(Tensor self, bool upper=False) -> Tensor
              output: cholesky_jvp(self_t, result, upper)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:3: output 'output' does not exist; aten::cholesky's outputs are result""")

    def test_term_using_another_inputs_tangent(self):
        actual = _error("""
            - name: _cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor
              result:
                x1: cdist_jvp(x1_t, x2_t)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: the term of x1 may only use its own tangent x1_t, not x2_t""")

    def test_term_for_a_non_tensor(self):
        actual = _error("""
            - name: _cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor
              result:
                p: cdist_jvp(x1_t)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: 'p' is not a Tensor input of this overload; inputs are x1, x2""")


SCATTER_REDUCE = "scatter_reduce.two(Tensor self, int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True) -> Tensor"


def _scatter_reduce_when(condition: str) -> str:
    return f"""
        - name: {SCATTER_REDUCE}
          result: cholesky_jvp(self_t, result, dim)
          when: {condition}
        """


class TestCondition(expecttest.TestCase):
    def test_condition_on_a_tensor_argument(self):
        actual = _error(_scatter_reduce_when("src.dim() == 2"))
        self.assertExpectedInline(actual, """derivatives.yaml:4: condition 'when' may not use the Tensor argument 'src' except as src.dtype: it is decided before tangents are unpacked, from the non-Tensor arguments (dim, include_self, reduce), the dtypes of the Tensor arguments, torch and the flag outer_derivative""")

    def test_condition_on_a_tensor_arguments_dtype_is_emitted(self):
        (entry,) = parse(textwrap.dedent(_scatter_reduce_when("src.dtype != torch.float16 and src.dtype.is_complex")),
                         "derivatives.yaml", HELPERS)
        self.assertExpectedInline(emit_condition(entry), """\
def when_scatter_reduce_two(arguments):
    # derivatives.yaml:2: when: src.dtype != torch.float16 and src.dtype.is_complex
    _, _, _, src, _, _ = arguments
    return src.dtype != torch.float16 and src.dtype.is_complex
""")

    def test_condition_on_a_tensor_argument_beside_its_dtype(self):
        actual = _error(_scatter_reduce_when("src.dtype == torch.float16 and src.numel() > 2"))
        self.assertExpectedInline(actual, """derivatives.yaml:4: condition 'when' may not use the Tensor argument 'src' except as src.dtype: it is decided before tangents are unpacked, from the non-Tensor arguments (dim, include_self, reduce), the dtypes of the Tensor arguments, torch and the flag outer_derivative""")

    def test_condition_with_an_unknown_name(self):
        actual = _error(_scatter_reduce_when('reduction == "prod"'))
        self.assertExpectedInline(actual, """derivatives.yaml:4: unknown name 'reduction' in condition 'when'; it may use the non-Tensor arguments (dim, include_self, reduce), the dtypes of the Tensor arguments, torch and the flag outer_derivative""")

    def test_condition_that_is_not_python(self):
        actual = _error(_scatter_reduce_when("reduce = 'prod'"))
        self.assertExpectedInline(actual, """derivatives.yaml:4: condition 'when' is not valid Python: invalid syntax: reduce = 'prod'""")

    def test_condition_is_emitted_over_the_bound_arguments(self):
        (entry,) = parse(textwrap.dedent(_scatter_reduce_when('reduce in ("prod", "mean") and include_self')),
                         "derivatives.yaml", HELPERS)
        self.assertExpectedInline(emit_condition(entry), """\
def when_scatter_reduce_two(arguments):
    # derivatives.yaml:2: when: reduce in ("prod", "mean") and include_self
    _, _, _, _, reduce, include_self = arguments
    return reduce in ("prod", "mean") and include_self
""")


def _layer_norm_when(condition: str, corrects: bool = True) -> str:
    corrects_line = "\n          corrects_upstream: mean and rstd lose their gradient" if corrects else ""
    return f"""
        - name: native_layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight, Tensor? bias, float eps) -> (Tensor, Tensor, Tensor)
          result0: cholesky_jvp(input_t, result0, eps)
          output_differentiability: [True, False, False]
          when: {condition}{corrects_line}
        """


class TestOuterDerivativeCondition(expecttest.TestCase):
    def test_flag_needs_an_upstream_formula_to_fall_back_on(self):
        actual = _error(_layer_norm_when("outer_derivative", corrects=False))
        self.assertExpectedInline(actual, """derivatives.yaml:5: condition 'outer_derivative' needs 'corrects_upstream: <reason>': where it is false the override falls back to upstream's own formula, which only an entry correcting one has; an entry for an overload without upstream formula applies always""")

    def test_flag_is_not_a_function(self):
        actual = _error(_layer_norm_when("outer_derivative(weight)"))
        self.assertExpectedInline(actual, """derivatives.yaml:5: 'outer_derivative' is a flag, not a function: write it bare (when: outer_derivative); it looks at every Tensor argument of the call""")

    def test_flag_is_emitted_as_a_call_on_every_tensor_argument(self):
        (entry,) = parse(textwrap.dedent(_layer_norm_when("eps > 0 and outer_derivative")), "derivatives.yaml", HELPERS)
        self.assertExpectedInline(emit_condition(entry), """\
def when_native_layer_norm(arguments):
    # derivatives.yaml:2: when: eps > 0 and outer_derivative
    input, _, weight, bias, eps = arguments
    return eps > 0 and outer_derivative(input, weight, bias)
""")


class TestDeclarations(expecttest.TestCase):
    def test_output_differentiability_of_the_wrong_length(self):
        actual = _error("""
            - name: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
              output: cholesky_jvp(self_t, is_target, reduction)
              output_differentiability: [True]
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: output_differentiability must list True or False for each of the outputs output, is_target""")

    def test_output_differentiability_against_a_formula(self):
        actual = _error("""
            - name: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
              output: cholesky_jvp(self_t, is_target, reduction)
              output_differentiability: [False, False]
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: output_differentiability declares output not differentiable, but the entry gives a formula for it""")

    def test_in_place_of_with_a_formula(self):
        actual = _error("""
            - name: index_reduce_(Tensor(a!) self, int dim, Tensor index, Tensor source, str reduce, *, bool include_self=True) -> Tensor(a!)
              result: cholesky_jvp(self_t, result, dim)
              in_place_of: index_reduce
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: an in_place_of entry takes its tangent from the out-of-place overload; remove its formulas""")

    def test_in_place_of_an_overload_with_other_arguments(self):
        actual = _error("""
            - name: index_reduce_(Tensor(a!) self, int dim, Tensor index, Tensor source, str reduce, *, bool include_self=True) -> Tensor(a!)
              in_place_of: scatter_reduce.two
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:3: aten::scatter_reduce.two does not take the arguments of aten::index_reduce_""")


class TestEmit(expecttest.TestCase):
    def test_per_input_terms_skip_inputs_without_tangent(self):
        (entry,) = parse(textwrap.dedent("""
            - name: _cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor
              result:
                x1: cdist_jvp(x1_t, x1_p, x2_p, p, result)
                x2: cdist_jvp(x2_t, x2_p, x1_p, p, result.mT).mT
            """), "derivatives.yaml", HELPERS)
        self.assertExpectedInline(emit_rule(entry), """\
def jvp__cdist_forward(primals, tangents, outputs):
    # derivatives.yaml:2: _cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor
    x1_p, x2_p, p, compute_mode = primals
    x1_t, x2_t, _, _ = tangents
    result = outputs
    result_tangent = None
    if x1_t is not None:
        result_tangent = add_tangents(result_tangent, cdist_jvp(x1_t, x1_p, x2_p, p, result))
    if x2_t is not None:
        result_tangent = add_tangents(result_tangent, cdist_jvp(x2_t, x2_p, x1_p, p, result.mT).mT)
    return result_tangent
""")

    def test_several_outputs_one_without_tangent(self):
        (entry,) = parse(textwrap.dedent("""
            - name: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
              output: cholesky_jvp(self_t, is_target, reduction)
            """), "derivatives.yaml", HELPERS)
        self.assertExpectedInline(emit_rule(entry), """\
def jvp_multilabel_margin_loss_forward(primals, tangents, outputs):
    # derivatives.yaml:2: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
    self_p, target_p, reduction = primals
    self_t, target_t, _ = tangents
    output, is_target = outputs
    output_tangent = cholesky_jvp(self_t, is_target, reduction)
    return (output_tangent, None)
""")


class TestSeveralOutputsOneFormula(expecttest.TestCase):
    def test_one_whole_formula_gives_a_tuple_for_its_outputs(self):
        (entry,) = parse(textwrap.dedent("""
            - name: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
              output, is_target: cholesky_jvp(self_t, output, reduction)
            """), "derivatives.yaml", HELPERS)
        self.assertExpectedInline(emit_rule(entry), """\
def jvp_multilabel_margin_loss_forward(primals, tangents, outputs):
    # derivatives.yaml:2: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
    self_p, target_p, reduction = primals
    self_t, target_t, _ = tangents
    output, is_target = outputs
    output_tangent, is_target_tangent = cholesky_jvp(self_t, output, reduction)
    return (output_tangent, is_target_tangent)
""")

    def test_per_input_terms_cannot_give_several_outputs(self):
        actual = _error("""
            - name: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
              output, is_target:
                self: cholesky_jvp(self_t)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: a formula for several outputs (output, is_target) must be one whole expression returning a tuple""")

def test_checked_in_code_is_fresh():
    done = subprocess.run([sys.executable, "-m", "codegen", "--check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


class TestReference(expecttest.TestCase):
    def test_entries_grouped_by_section_with_formulas_and_status(self):
        from codegen.docs import emit_reference, status_for

        text = textwrap.dedent("""
            # ---------------------------------------------------------------- linear algebra

            - name: cholesky(Tensor self, bool upper=False) -> Tensor
              result: cholesky_jvp(self_t, result, upper)

            # ---------------------------------------------------------------- distances

            - name: _cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor
              result:
                x1: cdist_jvp(x1_t, x1_p, x2_p, p, result)
                x2: cdist_jvp(x2_t, x2_p, x1_p, p, result.mT).mT
              when: p != 2.0
              corrects_upstream: an example reason
            """)
        entries = parse(text, "derivatives.yaml", HELPERS)
        status = {e.name: status_for(e, e.name == "aten::cholesky", "9.9.9") for e in entries}
        page = emit_reference(entries, text, "9.9.9", status, [("mylib::op", "torch_fwdad/formulas/mine.py", 7)])
        self.assertExpectedInline(page[page.index("## Contents"):], """\
## Contents

- **linear algebra**: [`cholesky`](#op-cholesky)
- **distances**: [`_cdist_forward`](#op-cdist-forward)
- **registered from Python**: `mylib::op`

## Linear algebra

<a id="op-cholesky"></a>
### `aten::cholesky`

```
cholesky(Tensor self, bool upper=False) -> Tensor
```

[`derivatives.yaml:4`](../derivatives.yaml#L4) · skipped with torch 9.9.9: torch has its own forward formula

- `result` = `cholesky_jvp(self_t, result, upper)`

## Distances

<a id="op-cdist-forward"></a>
### `aten::_cdist_forward`

```
_cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor
```

[`derivatives.yaml:9`](../derivatives.yaml#L9) · installed over torch 9.9.9's formula (corrects_upstream)

Corrects upstream: an example reason

Applies when `p != 2.0`; otherwise PyTorch's own kernel and formula run unchanged.

- `result`, one term per input:
  - from `x1`: `cdist_jvp(x1_t, x1_p, x2_p, p, result)`
  - from `x2`: `cdist_jvp(x2_t, x2_p, x1_p, p, result.mT).mT`

## Registered from Python

Operators outside aten (custom ops of torch itself) get their rules from `register_jvp` calls in `torch_fwdad/formulas/`, at import, when the installed torch has the operator. Their formulas are Python functions:

| Operator | Registered at |
|---|---|
| `mylib::op` | [`torch_fwdad/formulas/mine.py:7`](../torch_fwdad/formulas/mine.py#L7) |
""")


def test_reference_lists_python_registrations_without_importing_them(tmp_path):
    from codegen.docs import python_registrations

    (tmp_path / "family.py").write_text(
        'register_jvp("mylib::b", rule)\n'
        'def _install():\n'
        '    engine.register_jvp("mylib::a", rule, _origin="x")\n'
        '    register_jvp(variable_name, rule)  # not a literal: not listed\n'
        'raise ImportError("never run")\n')
    assert python_registrations(str(tmp_path), str(tmp_path)) == [("mylib::a", "family.py", 3), ("mylib::b", "family.py", 1)]


GRID_SAMPLER = "(Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> Tensor"
GRID_SAMPLER_2D = f"""
- name: grid_sampler_2d{GRID_SAMPLER}
  result:
    input: cholesky_jvp(op, input_t, grid_p, interpolation_mode)
    grid: cdist_jvp(input_p, grid_t, align_corners)
"""


def _after_grid_sampler_2d(text: str) -> str:
    return GRID_SAMPLER_2D + textwrap.dedent(text)


class TestSameAs(expecttest.TestCase):
    def test_shared_formulas_are_emitted_for_the_entry_with_its_own_op(self):
        text = _after_grid_sampler_2d(f"""
            - name: grid_sampler_3d{GRID_SAMPLER}
              same_as: grid_sampler_2d
            """)
        first, second = parse(text, "derivatives.yaml", HELPERS)
        assert second.same_as == "aten::grid_sampler_2d" and second.formulas == first.formulas
        self.assertExpectedInline(emit_rule(second), """\
def jvp_grid_sampler_3d(primals, tangents, outputs):
    # derivatives.yaml:7: grid_sampler_3d(Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners) -> Tensor
    # same_as: aten::grid_sampler_2d, whose formulas follow
    input_p, grid_p, interpolation_mode, padding_mode, align_corners = primals
    input_t, grid_t, _, _, _ = tangents
    result = outputs
    op = torch.ops.aten.grid_sampler_3d.default
    result_tangent = None
    if input_t is not None:
        result_tangent = add_tangents(result_tangent, cholesky_jvp(op, input_t, grid_p, interpolation_mode))
    if grid_t is not None:
        result_tangent = add_tangents(result_tangent, cdist_jvp(input_p, grid_t, align_corners))
    return result_tangent
""")

    def test_same_as_with_formulas_of_its_own(self):
        actual = _error(_after_grid_sampler_2d(f"""
            - name: grid_sampler_3d{GRID_SAMPLER}
              same_as: grid_sampler_2d
              result: input_t
            """))
        self.assertExpectedInline(actual, """derivatives.yaml:8: an entry with same_as takes its formulas from aten::grid_sampler_2d; remove its own formulas or drop same_as""")

    def test_same_as_an_entry_not_above(self):
        actual = _error(f"""
            - name: grid_sampler_3d{GRID_SAMPLER}
              same_as: grid_sampler_2d
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:3: same_as: no entry for aten::grid_sampler_2d above this one; same_as names an earlier entry's overload""")

    def test_same_as_an_overload_without_the_arguments(self):
        actual = _error(_after_grid_sampler_2d("""
            - name: _cdist_forward(Tensor x1, Tensor x2, float p, int? compute_mode) -> Tensor
              same_as: grid_sampler_2d
            """))
        self.assertExpectedInline(actual, """derivatives.yaml:8: same_as: aten::grid_sampler_2d's formulas use 'input', which aten::_cdist_forward does not take; write its formulas out""")

    def test_same_as_an_overload_whose_argument_has_another_type(self):
        actual = _error("""
            - name: _ctc_loss(Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)
              result0: cdist_jvp(log_probs_t, input_lengths)
            - name: _ctc_loss.Tensor(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0, bool zero_infinity=False) -> (Tensor, Tensor)
              same_as: _ctc_loss
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:5: same_as: 'input_lengths' is List[int] in aten::_ctc_loss but Tensor here; write its formulas out""")


def test_every_entry_reads_back_from_its_own_yaml():
    """The model is lossless: model -> YAML text -> model gives the same entries."""
    from codegen.__main__ import SOURCE
    from codegen.facts import formula_helpers
    from codegen.parse import load

    helpers = formula_helpers()
    entries = load(SOURCE, helpers)
    text = "".join(entry.to_yaml() for entry in entries)
    assert parse(text, "derivatives.yaml", helpers) == entries


GROUPED_MM = "_grouped_mm(Tensor self, Tensor mat2, Tensor? offs=None, Tensor? bias=None, ScalarType? out_dtype=None) -> Tensor"


class TestInputKeywords(expecttest.TestCase):
    def test_keywords_expand_in_the_generated_rule(self):
        (entry,) = parse(textwrap.dedent(f"""
            - name: {GROUPED_MM}
              result:
                self: auto_linear
                mat2: auto_linear
                offs: non_differentiable
                bias: {{not_implemented: the kernels refuse a bias}}
            """), "derivatives.yaml", HELPERS)
        self.assertExpectedInline(emit_rule(entry), """\
def jvp__grouped_mm(primals, tangents, outputs):
    # derivatives.yaml:2: _grouped_mm(Tensor self, Tensor mat2, Tensor? offs=None, Tensor? bias=None, ScalarType? out_dtype=None) -> Tensor
    # non_differentiable: offs
    self_p, mat2_p, offs_p, bias_p, out_dtype = primals
    self_t, mat2_t, _, bias_t, _ = tangents
    result = outputs
    result_tangent = None
    if self_t is not None:  # self: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten._grouped_mm.default(self_t, mat2_p, offs_p, None, out_dtype))
    if mat2_t is not None:  # mat2: auto_linear
        result_tangent = add_tangents(result_tangent, torch.ops.aten._grouped_mm.default(self_p, mat2_t, offs_p, None, out_dtype))
    if bias_t is not None:  # bias: {not_implemented: the kernels refuse a bias}
        result_tangent = add_tangents(result_tangent, no_derivative(bias_t, '_grouped_mm', 'bias'))
    return result_tangent
""")

    def test_auto_linear_keeps_a_multilinear_optional_input(self):
        (entry,) = parse(textwrap.dedent("""
            - name: multi_margin_loss_backward(Tensor grad_output, Tensor self, Tensor target, Scalar p, Scalar margin, Tensor? weight=None, int reduction=1) -> Tensor
              result:
                grad_output: auto_linear
                weight: auto_linear
            """), "derivatives.yaml", HELPERS)
        from codegen.model import auto_linear_call
        self.assertExpectedInline(auto_linear_call(entry, "grad_output"), """torch.ops.aten.multi_margin_loss_backward.default(grad_output_t, self_p, target_p, p, margin, weight_p, reduction)""")

    def test_auto_linear_as_a_whole_formula(self):
        actual = _error(f"""
            - name: {GROUPED_MM}
              result: auto_linear
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:3: auto_linear is said of one input: write it under the output, 'result:' then '<input>: auto_linear' on the next line""")

    def test_auto_linear_on_a_tensor_list(self):
        actual = _error("""
            - name: _foreach_mm(Tensor[] self, Tensor[] mat2) -> Tensor[]
              result:
                self: auto_linear
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: auto_linear needs a Tensor input; self is List[Tensor]: write its term""")

    def test_auto_linear_on_an_overload_with_several_outputs(self):
        actual = _error("""
            - name: _pack_padded_sequence(Tensor input, Tensor lengths, bool batch_first) -> (Tensor, Tensor)
              result0:
                input: auto_linear
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: auto_linear needs an overload with one output; aten::_pack_padded_sequence has 2: write the call, e.g. torch.ops.aten._pack_padded_sequence.default(...)[0]""")

    def test_not_implemented_without_a_reason(self):
        actual = _error(f"""
            - name: {GROUPED_MM}
              result:
                bias: not_implemented
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: not_implemented needs a reason: bias: {not_implemented: <why PyTorch's backward has none>}""")

    def test_a_mapping_under_an_input_other_than_not_implemented(self):
        actual = _error(f"""
            - name: {GROUPED_MM}
              result:
                bias: {{not_implemeted: typo}}
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:4: a mapping under an input must be 'not_implemented: <reason>', e.g. bias: {not_implemented: PyTorch's backward has no formula for it}""")

    def test_a_term_for_an_input_declared_non_differentiable(self):
        actual = _error("""
            - name: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
              output:
                target: non_differentiable
              is_target:
                target: cholesky_jvp(target_t)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:6: target is declared non_differentiable at derivatives.yaml:4: remove its term or that declaration""")

    def test_a_whole_formula_reading_a_non_differentiable_tangent(self):
        actual = _error("""
            - name: multilabel_margin_loss_forward(Tensor self, Tensor target, int reduction) -> (Tensor output, Tensor is_target)
              output:
                target: non_differentiable
              is_target: cholesky_jvp(self_t, target_t)
            """)
        self.assertExpectedInline(actual, """derivatives.yaml:5: 'target_t' is the tangent of target, declared non_differentiable at derivatives.yaml:4: it is never unpacked; use target_p""")


class TestReferenceKeywords(expecttest.TestCase):
    def test_keywords_are_shown_with_what_they_expand_to(self):
        from codegen.docs import emit_reference

        text = textwrap.dedent(f"""
            - name: {GROUPED_MM}
              result:
                self: auto_linear
                offs: non_differentiable
                bias: {{not_implemented: the kernels refuse a bias}}
            - name: grid_sampler_2d{GRID_SAMPLER}
              result:
                input: cholesky_jvp(op, input_t)
            - name: grid_sampler_3d{GRID_SAMPLER}
              same_as: grid_sampler_2d
            """)
        entries = parse(text, "derivatives.yaml", HELPERS)
        page = emit_reference(entries, text, "9.9.9", {}, [])
        formulas = [line for line in page.splitlines() if line.startswith(("- ", "  - "))]
        self.assertExpectedInline("\n".join(formulas), """\
- **entries**: [`_grouped_mm`](#op-grouped-mm), [`grid_sampler_2d`](#op-grid-sampler-2d), [`grid_sampler_3d`](#op-grid-sampler-3d)
- `result`, one term per input:
  - from `self`: `auto_linear`, i.e. `torch.ops.aten._grouped_mm.default(self_t, mat2_p, offs_p, None, out_dtype)`
  - `offs`: `non_differentiable` (no term; its tangent is not read)
  - from `bias`: `{not_implemented: the kernels refuse a bias}`, i.e. `no_derivative(bias_t, '_grouped_mm', 'bias')`
- `result`, one term per input:
  - from `input`: `cholesky_jvp(op, input_t)`
- same formulas as [`aten::grid_sampler_2d`](#op-grid-sampler-2d) (`same_as`)
- `result`, one term per input:
  - from `input`: `cholesky_jvp(op, input_t)`""")


def test_same_as_reads_back_from_its_own_yaml():
    text = _after_grid_sampler_2d(f"""
        - name: grid_sampler_3d{GRID_SAMPLER}
          same_as: grid_sampler_2d
          when: align_corners
        """)
    entries = parse(text, "derivatives.yaml", HELPERS)
    assert parse("".join(e.to_yaml() for e in entries), "derivatives.yaml", HELPERS) == entries
