"""derivatives.yaml -> torch_fwdad/_generated: model (model.py), parse and validate (parse.py), emit (emit.py)."""
