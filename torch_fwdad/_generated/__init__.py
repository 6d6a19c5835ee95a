"""Code emitted by `python -m codegen` from derivatives.yaml (jvp_rules.py): do not edit.

Imports: engine, formulas.
"""
