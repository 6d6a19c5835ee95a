"""What the colouring stage hands to evaluation: a `Coloring`, and the `ColoredPattern` pairing it with its pattern."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: column: one JVP per colour; row: one VJP per colour; star / acyclic: one HVP per colour.
KINDS = ("column", "row", "star", "acyclic")


@dataclass(frozen=True, eq=False)
class Coloring:
    """colors[v] in [0, num_colors) for each column (column), row (row) or variable (star/acyclic)."""

    colors: np.ndarray
    num_colors: int
    lower_bound: int
    kind: str
    ordering: str
    refine: int = 0
    #: colours of the first greedy colouring, before refinement
    greedy_num_colors: int | None = None

    def __repr__(self):
        return (f"Coloring(kind={self.kind!r}, num_colors={self.num_colors}, "
                f"lower_bound={self.lower_bound}, ordering={self.ordering!r}, refine={self.refine}, "
                f"greedy_num_colors={self.greedy_num_colors})")


@dataclass(frozen=True, eq=False)
class ColoredPattern:
    """The one object passed from colouring to evaluation: the (outputs, inputs) pattern, its
    colouring, and the mode they imply (`coloring.kind`: which product each colour costs)."""

    pattern: sp.csr_array
    coloring: Coloring

    @property
    def mode(self) -> str:
        return self.coloring.kind


def count_colors(colors: np.ndarray) -> int:
    return int(colors.max()) + 1 if len(colors) else 0
