"""python -m torch_fwdad [report ...]: what torch_fwdad adds to this torch, checked end to end."""

from __future__ import annotations

import sys

import torch

import torch_fwdad
from torch_fwdad.formulas import attention_tiles, grid_sample_tangent


def summary() -> int:
    rules = torch_fwdad.registered_ops()
    skipped = {name: why for name, why in torch_fwdad.builtin_status.items() if why != "installed"}
    print(f"torch_fwdad {torch_fwdad.__version__} on torch {torch.__version__}: "
          f"{len(rules)} forward rules installed, {len(skipped)} entries not needed here")
    engine = torch_fwdad.engine_info()
    print(f"no-tangent path: {engine['path']} ({engine['reason']})")
    tiles = attention_tiles.extension.info()
    print(f"attention's values-only tiles: {tiles['path']} ({tiles['reason']})")
    grid = grid_sample_tangent.extension.info()
    print(f"grid_sample's values-only tangent kernel: {grid['path']} ({grid['reason']})")
    for rule in rules:
        note = f"  (corrects upstream: {rule.corrects_upstream})" if rule.corrects_upstream else ""
        print(f"  + {rule.name:<60} {rule.origin}{note}")
    for name, why in sorted(skipped.items()):
        print(f"  - {name:<60} {why}")
    return 0 if end_to_end() else 1


def end_to_end() -> bool:
    """torch.func.jvp through torch.cdist, which plain torch 2.13 cannot do, vs finite differences."""
    generator = torch.Generator().manual_seed(0)
    x, y, t = (torch.randn(5, 3, dtype=torch.float64, generator=generator) for _ in range(3))

    def distances(points):
        return torch.cdist(points, y)

    try:
        _, tangent = torch.func.jvp(distances, (x,), (t,))
    except NotImplementedError as error:
        print(f"end-to-end check FAILED: {error}")
        return False
    eps = 1e-6
    expected = (distances(x + eps * t) - distances(x - eps * t)) / (2 * eps)
    error = (tangent - expected).abs().max().item()
    ok = error < 1e-6
    print(f"end-to-end check: torch.func.jvp through torch.cdist vs finite differences, "
          f"max error {error:.1e}: {'ok' if ok else 'FAILED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "report":
        from torch_fwdad.report import main as report_main

        return report_main(argv[1:])
    if argv:
        print("usage: python -m torch_fwdad [report [options]]", file=sys.stderr)
        return 2
    return summary()


if __name__ == "__main__":
    sys.exit(main())
