"""derivatives.yaml -> torch_fwdad/_generated and docs/reference.md.

Layers, imported one way: model.py (the typed, lossless data model) <- facts.py (what
codegen needs from torch and from torch_fwdad's source) <- parse.py (the one reader of
derivatives.yaml) <- emit.py, docs.py <- __main__.py. codegen never imports torch_fwdad:
the package imports the generated code, which may be stale or broken while codegen runs
to fix it (tests/test_codegen_facts.py checks the facts read from source agree with the
runtime).
"""
