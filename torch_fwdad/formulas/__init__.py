"""Hand-written helpers that derivatives.yaml formulas call: the math lives here, one family a module.

Every name in a module's __all__ is in scope for formulas (codegen checks this); a family
adds helpers by adding a module, nothing to edit here.

Imports: engine.
Importing formulas registers nothing: linear_cross_entropy's `register_rules()` is called
by torch_fwdad/__init__.py, the one place that installs rules at import.
"""

import importlib as _importlib
import pkgutil as _pkgutil



def _python_modules():
    """The Python modules here. A compiled extension (_attention_tiles, optional) is loaded by
    its own Python module, which falls back when it is missing or does not load."""
    for info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg or info.module_finder.find_spec(f"{__name__}.{info.name}").origin.endswith(".py"):
            yield info


__all__: list[str] = []
for _module_info in _python_modules():
    _module = _importlib.import_module(f"{__name__}.{_module_info.name}")
    for _name in _module.__all__:
        if _name in globals():
            raise ImportError(f"torch_fwdad.formulas: helper {_name!r} of {_module.__name__} is defined twice")
        globals()[_name] = getattr(_module, _name)
    __all__ += _module.__all__
