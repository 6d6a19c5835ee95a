"""x (a tensor or a tuple of tensors) seen as one flat vector: the variables of every stage."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FlatInputs:
    """x (a tensor or a tuple of tensors) seen as one flat vector of `numel` entries."""

    shapes: tuple
    is_tuple: bool
    dtype: torch.dtype

    @classmethod
    def of(cls, x) -> "FlatInputs":
        parts = x if isinstance(x, tuple) else (x,)
        if not parts or not all(isinstance(p, torch.Tensor) for p in parts):
            raise TypeError(f"x must be a tensor or a non-empty tuple of tensors, got {type(x).__name__}")
        if len({p.dtype for p in parts}) > 1 or len({p.device for p in parts}) > 1:
            raise TypeError("all tensors in x must share one dtype and device (they form one flat vector)")
        if not parts[0].is_floating_point() and not parts[0].is_complex():
            raise TypeError(f"x must be floating point to be differentiated, got {parts[0].dtype}")
        return cls(tuple(tuple(p.shape) for p in parts), isinstance(x, tuple), parts[0].dtype)

    @property
    def numels(self):
        return [math.prod(s) for s in self.shapes]

    @property
    def numel(self):
        return sum(self.numels)

    def flatten(self, x) -> torch.Tensor:
        if not self.is_tuple:
            return x.reshape(-1)
        return torch.cat([p.reshape(-1) for p in x])

    def unflatten(self, flat: torch.Tensor) -> tuple:
        return tuple(chunk.reshape(shape) for chunk, shape in zip(flat.split(self.numels), self.shapes))

    def flat_function(self, func):
        def flat_func(flat):
            out = func(*self.unflatten(flat))
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"func must return a single tensor, got {type(out).__name__}")
            return out
        return flat_func

