"""torch.compile of a plan's evaluation, with eager as the fallback, and a direct call of its graph.

A compiled call through torch.compile costs 0.1-0.2 ms before any arithmetic (dynamo's frame
hook, stance and config switches, the guards, the runtime wrappers): several times the primal
of a 64x64 Laplacian energy (0.04 ms). Once torch.compile has compiled one graph for the evaluation, a plan
calls that graph itself, after checking dynamo's own guards for the call (so whatever torch.compile
would recompile for, a changed closure, global, dtype or shape, still takes the full path).

The guards of the evaluation's frame are mostly on torch.func's own code (about 230: 0.02-0.05 ms
a call, ten times the guards of the user's function alone). So where it can, the plan has dynamo
capture the user's function f by itself first (f's guards, and its graph g), and compiles the
evaluation over g instead of f. While f's guards pass (they include grad mode, autocast and the
other global state), f computes what g computes; the evaluation over g reads nothing else that
can change (g, the plan's seeds, x), so f's guards are what the direct call checks. It assumes
torch.func's own functions are not replaced after compiling (the one thing the evaluation's
guards also watched). A function that acts otherwise under torch.func than at the top level,
where g was captured (it branches on `requires_grad`, say), is caught once, when arming: the
result over g must equal the eager evaluation, else the evaluation's own guards are used as
before. Any failing guard takes the full path: torch.compile of the evaluation over f itself.
Hand-written because torch.compile offers no public "check guards, run graph" call
(`torch.compiler.set_stance(skip_guard_eval_unsafe=True)` skips the guards, and still costs most
of the rest). It reads dynamo's cache entries (private), so anything unexpected there, in any
torch version, leaves the plan on the full torch.compile path.
"""

from __future__ import annotations

import dis
import types
import warnings

import torch

#: what dynamo's code around a single graph may do for the direct call to replace it: load the
#: inputs, call the graph (and its bytecode-timing hooks), unpack and return. No store, no call of
#: anything else: a side effect dynamo replays after the graph would show as one of those.
_PLAIN_OPCODES = frozenset({
    "COPY_FREE_VARS", "RESUME", "NOP", "CACHE", "PUSH_NULL", "LOAD_GLOBAL", "LOAD_ATTR", "LOAD_FAST",
    "LOAD_FAST_CHECK", "LOAD_FAST_LOAD_FAST", "LOAD_DEREF", "LOAD_CONST", "COPY", "SWAP", "STORE_FAST",
    "DELETE_FAST", "PRECALL", "CALL", "KW_NAMES", "POP_TOP", "BINARY_SUBSCR", "BUILD_TUPLE", "BUILD_LIST",
    "LIST_EXTEND", "RETURN_VALUE", "RETURN_CONST", "UNPACK_SEQUENCE",
})
_PLAIN_NAMES = frozenset({"__import_torch_dot__dynamo_dot_utils", "record_pregraph_bytecode_enter",
                          "record_pregraph_bytecode_exit"})


class CompiledOrEager:
    """A torch.compile'd evaluation of one tensor `x` that falls back to eager, with a warning, if
    compiling fails, and calls its compiled graph directly once that is known to be equivalent."""

    #: arm the direct call on the user's function's guards where it can, and compute broadcast
    #: values once (RECOMPUTED_IF_INLINED); the benchmark switches both off to show the plan before
    function_guards = True
    materialize_broadcast_values = True

    def __init__(self, run, backend, owned=(), func=None, run_over=None):
        """`owned`: tensors `run` reads that the plan made and never changes or rebinds (seeds,
        index tensors); the graph may take them, and the direct call passes the same ones.
        `func`, `run_over`: the user's (flat) function that `run` evaluates, and `run_over(f)`,
        the same evaluation of another function f: given both, the direct call checks the
        guards of `func` alone (see the module's docstring)."""
        backend = "inductor" if backend is True else backend
        self.run, self._code, self._recording, self.owned = run, _own_code(run), self._new_recording(backend), owned
        self.compiled = torch.compile(self._code, dynamic=False, backend=self._recording)
        self.direct = None  # a _DirectCall once the first compiled call has been checked
        self._backend, self._func, self._run_over = backend, func, run_over
        self._over_graph = None  # (the function's capture, the evaluation over its graph): kept alive
        self._over_tried = False  # tried once per arming: a function that cannot be captured is not traced again

    def __call__(self, x):
        if self.direct is not None:
            result = self.direct(x)
            if result is _STALE:
                self.direct, self._recording.graphs, self._over_tried = None, [], False
            elif result is not _FULL_PATH:
                return result
        if self.compiled is not None and self.direct is None and not self._over_tried and _plain_context():
            self._over_tried = True
            result = self._arm_on_function_guards(x)
            if result is not None:
                return result
        if self.compiled is not None:
            try:
                result = self.compiled(x)
            except Exception as error:  # noqa: BLE001 - any compiler failure: eager is still exact
                warnings.warn(f"compile=True: torch.compile failed ({type(error).__name__}: {str(error)[:200]}); "
                              "evaluating eagerly", RuntimeWarning, stacklevel=3)
                self.compiled = self.direct = None
            else:
                self._arm_direct(x, result)
                return result
        return self.run(x)

    def _new_recording(self, backend):
        return _Recording(backend, self.materialize_broadcast_values)

    def _arm_on_function_guards(self, x):
        """The evaluation over dynamo's graph of the user's function, called directly after that
        function's guards; None (and the usual arming) unless every step is as expected and the
        result equals the eager evaluation's."""
        if self._func is None or not self.function_guards:
            return None
        try:
            captured = _FunctionGraph.capture(self._func, x)
            if captured is None:
                return None
            over = _own_code(self._run_over(captured.as_function()))
            recording = self._new_recording(self._backend)
            result = torch.compile(over, dynamic=False, backend=recording)(x)
            graphs, recording.graphs = recording.graphs, None
            direct = _DirectCall.of(over, graphs, x, result, self.owned)
            eager = self.run(x)
            # a function whose graph differs from what it does under torch.func (it branches on
            # requires_grad, say) shows here
            torch.testing.assert_close(result[0], eager[0])
        except Exception:  # noqa: BLE001 - anything unexpected: the evaluation's own guards, as before
            return None
        if direct is None or result[1] != eager[1]:
            return None
        self.direct = direct.guarded_by(captured.code, captured.guard_manager)
        self._over_graph = (captured, over)
        for graph in graphs:
            graph.seen = ()
        return result

    def _arm_direct(self, x, result):
        """After the compiling call: the direct call, if dynamo made exactly one graph that takes x
        (and fixed tensors of the plan's own) and returns the result. A direct call on the
        function's guards stays: a call that took the full path (its guards failed, or it ran
        inside a transform) does not replace it with the evaluation's dearer guards."""
        graphs, self._recording.graphs = self._recording.graphs, None
        if graphs is None:
            return
        if self.direct is None:
            self.direct = _DirectCall.of(self._code, graphs, x, result, self.owned)
        for graph in graphs:
            graph.seen = ()  # recorded once; no tensor kept alive


_FULL_PATH = object()  # what a direct call returns when the call must go through torch.compile
_STALE = object()  # ... and when its graph and guards are no longer dynamo's: armed again at the next compile


#: elementwise functions inductor computes again wherever it inlines them. In a batch of products
#: their values at x (sin(x), cos(x)) are broadcast over the colours: inlined, each is computed once
#: per colour. Inductor materialises broadcast values only when they call its own list of heavy
#: functions (exp, log, tanh, ...) or exceed an op count; with that count 0 (for graphs that call
#: these) they are computed once: tridiagonal n=1e4 graph 0.24 -> 0.11 ms, banded + dense row
#: Hessian n=1e4 0.25 -> 0.21 ms. Graphs without them measured slower so (Laplacian Hessian
#: 0.059 -> 0.087 ms, Brusselator 0.048 -> 0.087 ms): they keep inductor's default.
RECOMPUTED_IF_INLINED = frozenset({
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "asinh", "acosh", "atanh",
    "erf", "erfc", "erfinv", "lgamma", "digamma", "polygamma", "bessel_j0", "bessel_j1",
})


def calls_recomputed_if_inlined(gm: torch.fx.GraphModule) -> bool:
    """Whether dynamo's graph calls one of RECOMPUTED_IF_INLINED (as torch.f, Tensor.f or aten.f)."""
    for node in gm.graph.nodes:
        if node.op in ("call_function", "call_method"):
            name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
            if name.split(".")[0].removeprefix("special_") in RECOMPUTED_IF_INLINED:
                return True
    return False


class _Recording:
    """The backend, with what the next call of the graph receives and returns kept (only until the
    plan has looked at it: afterwards the graph is called bare)."""

    def __init__(self, backend, materialize_broadcast_values=True):
        self.backend, self.graphs = torch._dynamo.lookup_backend(backend), []
        self.materialize = materialize_broadcast_values and backend == "inductor"

    def __call__(self, gm, example_inputs):
        if self.materialize and calls_recomputed_if_inlined(gm):
            from torch._inductor import config as inductor_config  # noqa: PLC0415 - imported by the backend anyway
            with inductor_config.patch(realize_opcount_threshold=0):
                compiled = self.backend(gm, example_inputs)
        else:
            compiled = self.backend(gm, example_inputs)
        if self.graphs is None:  # recompiles after the plan looked: nothing recorded
            return compiled
        self.graphs.append(_RecordedGraph(compiled))
        return self.graphs[-1]


class _RecordedGraph:
    def __init__(self, compiled):
        self.compiled, self.seen = compiled, None

    def __call__(self, *args):
        out = self.compiled(*args)
        if self.seen is None:
            self.seen = (args, out)
        return out


class _DirectCall:
    """x -> the compiled graph's result, after dynamo's guards for the frame torch.compile would run.

    `arguments` says, per graph input, whether it is x (None) or a tensor the plan owns (the
    seeds); `rebuild` makes the evaluation's result from the graph's outputs.
    """

    disabled = False  # tests and the benchmark switch the direct call off to compare with the full path

    def __init__(self, code, guard_manager, graph, arguments, rebuild, of_function=False):
        self.code, self.guard_manager, self.graph = code, guard_manager, graph
        self.of_function = of_function  # the guards are the user's function's (guarded_by), not the evaluation's
        self.arguments, self.rebuild = arguments, rebuild
        self.free_names = code.__code__.co_freevars
        self.arg_name = code.__code__.co_varnames[0]

    @classmethod
    def of(cls, code, graphs, x, result, owned):
        entries = _cache_entries(code)
        if len(graphs) != 1 or len(entries) != 1 or graphs[0].seen is None or not _plain(entries[0].code):
            return None
        graph, (args, out) = graphs[0], graphs[0].seen
        owned = {id(tensor) for tensor in owned}
        if not all(a is x or id(a) in owned for a in args):
            return None  # a graph input from elsewhere (a tensor the user's function reads): full path
        arguments = tuple(None if a is x else a for a in args)
        rebuild = _rebuilder(result, out)
        if rebuild is None:
            return None
        return cls(code, entries[0].guard_manager, graph.compiled, arguments, rebuild)

    def guarded_by(self, code, guard_manager):
        """The same graph, called after the guards of another frame of x (the user's function)."""
        return type(self)(code, guard_manager, self.graph, self.arguments, self.rebuild, of_function=True)

    def __call__(self, x):
        if self.disabled or not _plain_context():
            return _FULL_PATH
        if not any(entry.guard_manager is self.guard_manager for entry in _cache_entries(self.code)):
            return _STALE  # dynamo dropped these guards (reset, or an object they match by id was freed)
        frame = {self.arg_name: x}
        frame.update(zip(self.free_names, (cell.cell_contents for cell in self.code.__closure__)))
        try:
            valid = self.guard_manager.check(frame)
        except Exception:  # noqa: BLE001 - a guard that cannot be read here: torch.compile decides
            valid = False
        if not valid:
            return _FULL_PATH
        return self.rebuild(self.graph(*(x if a is None else a for a in self.arguments)))


class _FunctionGraph:
    """Dynamo's graph of the user's function alone, and the guards under which it is that function."""

    def __init__(self, code, guard_manager, graph):
        self.code, self.guard_manager, self.graph = code, guard_manager, graph

    @classmethod
    def capture(cls, func, x):
        """One graph whose only input is x and whose output is what func returns, behind dynamo
        code that does nothing else; None otherwise (a graph break, a tensor func reads, ...)."""
        code, graphs = _own_code(func), []

        def record(gm, example_inputs):
            graphs.append(_RecordedGraph(gm))
            return graphs[-1]
        out = torch.compile(code, dynamic=False, backend=record)(x)
        entries = _cache_entries(code)
        if len(graphs) != 1 or len(entries) != 1 or graphs[0].seen is None or not _plain(entries[0].code):
            return None
        args, outputs = graphs[0].seen
        graphs[0].seen = ()
        if len(args) != 1 or args[0] is not x or len(outputs) != 1 or outputs[0] is not out:
            return None
        return cls(code, entries[0].guard_manager, graphs[0].compiled)

    def as_function(self):
        graph = self.graph

        def captured(flat):
            return graph(flat)[0]
        return captured


def _plain_context() -> bool:
    """No transform, mode or compilation around the call that dynamo's frame hook would handle."""
    return (torch.compiler.is_compiling() is False and torch._C._len_torch_dispatch_stack() == 0
            and torch._C._len_torch_function_stack() == 0 and torch._C._functorch.peek_interpreter_stack() is None
            and torch._dynamo.eval_frame._stance.stance == "default"
            and torch.autograd.forward_ad._current_level == -1)  # the evaluation's guards check it; f's do not


def _cache_entries(code):
    try:
        return torch._dynamo.eval_frame._debug_get_cache_entry_list(code.__code__)
    except (AttributeError, TypeError):
        return []


def _plain(transformed: types.CodeType) -> bool:
    """Dynamo's code for the frame only calls the graph: nothing stored, no other name called."""
    for instruction in dis.get_instructions(transformed):
        if instruction.opname not in _PLAIN_OPCODES:
            return False
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_ATTR"):
            name = instruction.argval
            if not (name in _PLAIN_NAMES or name.startswith("__compiled_fn")):
                return False
    return True


def _rebuilder(result, graph_outputs):
    """The evaluation's (products, output shape) from the graph's outputs: the products one of
    them, the shape a constant (dynamo's code returns it as one)."""
    products, shape = result
    index = next((i for i, out in enumerate(graph_outputs) if out is products), None)
    if index is None or not all(isinstance(size, int) for size in shape):
        return None
    return lambda outputs: (outputs[index], shape)


def _own_code(run):
    """`run` with a code object of its own. Dynamo keeps compiled programs, checks their guards
    and counts recompiles per code object; every plan's evaluation is the same closure code, so
    without this the plans of one process would share one cache: each call would check the
    other plans' guards first, and past dynamo's recompile limit (8) new plans would run eagerly."""
    code = run.__code__.replace()  # a copy: same bytecode, a new object
    return types.FunctionType(code, run.__globals__, run.__name__, run.__defaults__, run.__closure__)
