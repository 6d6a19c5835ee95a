"""Property: on random compositions of supported ops, a detected pattern is never a subset.

Each seed builds a small function from a random chain of ops (pointwise, broadcasting,
movement, indexing, reductions, softmax/cumsum, matmul with constant and traced operands,
convolution, scatter/gather), then compares `structural_pattern` (Jacobian) and the
structural Hessian pattern with the nonzeros of torch.func.jacfwd / hessian at two random
points. Detected may be a superset (structural zeros, conservative rules), never miss one.
CI runs a seeded subset; `-m slow` runs the full sweep.
"""

import random
import warnings

import pytest
import torch
import torch.nn.functional as F

from torch_fwdad.sparse_ad import structural_pattern
from torch_fwdad.sparse_ad.detection import detect_hessian_pattern

torch.set_default_dtype(torch.float64)
SIZE = 12


def _unary(rng):
    return rng.choice([torch.sin, torch.tanh, torch.exp, lambda t: t * t, lambda t: t ** 3, torch.sigmoid])


def _constant(rng, *shape, density=0.5):
    generator = torch.Generator().manual_seed(rng.randrange(2 ** 31))
    return torch.randn(*shape, generator=generator) * (torch.rand(*shape, generator=generator) < density)


def _indices(rng, high, count):
    return torch.tensor([rng.randrange(high) for _ in range(count)])


def _step(rng, lengths):
    """One op reading one or two tensors of the pool (given by position), returning a 1-D tensor.

    Decided at build time (constants included), so the function itself draws no random numbers.
    """
    i, j = rng.randrange(len(lengths)), rng.randrange(len(lengths))
    n, m = lengths[i], lengths[j]
    kind = rng.randrange(16)
    if kind == 0:
        unary = _unary(rng)
        return lambda pool: unary(pool[i])
    if kind == 1:
        k, pick = min(n, m), rng.randrange(2)
        return lambda pool: pool[i][:k] * pool[j][m - k:] + (pool[i][:k] if pick else pool[j][:k])
    if kind == 2:
        shift = rng.randrange(n)
        return lambda pool: torch.roll(pool[i].flip(0), shift)
    if kind == 3:
        start = rng.randrange(n)
        stop = start + rng.randrange(1, n + 1)
        return lambda pool: pool[i][start:stop] * 2
    if kind == 4:
        index = _indices(rng, n, rng.randrange(1, 2 * n))
        return lambda pool: pool[i][index]
    if kind == 5:
        return lambda pool: torch.cat([pool[i], F.pad(pool[j], (1, 2))])[:3 * SIZE]
    if kind == 6:
        rows = rng.choice([d for d in (1, 2, 3, 4) if n % d == 0])
        reduce = rng.choice([lambda g: g.sum(1), lambda g: g.prod(0), lambda g: g.amax(1), lambda g: g.logsumexp(0)])
        return lambda pool: torch.cat([reduce(pool[i].reshape(rows, -1)), pool[i]])
    if kind == 7:
        rows = rng.choice([d for d in (1, 2, 3, 4) if n % d == 0])
        mix = rng.choice([lambda g: g.softmax(1), lambda g: g.cumsum(0), lambda g: g.sort(1).values])
        return lambda pool: mix(pool[i].reshape(rows, -1)).reshape(-1)
    if kind == 8:
        matrix = _constant(rng, rng.randrange(1, SIZE), n)
        return lambda pool: matrix @ pool[i]
    if kind == 9:
        rows = rng.choice([d for d in (1, 2, 3) if n % d == 0])
        k = n // rows
        return lambda pool: pool[i].reshape(rows, k) @ (pool[j][:k] if m >= k else F.pad(pool[j], (0, k - m)))
    if kind == 10:
        k = min(n, m)
        return lambda pool: torch.dot(pool[i][:k], pool[j][:k]).reshape(1) * pool[i]
    if kind == 11:
        kernel = _constant(rng, 1, 1, rng.choice([1, 2, 3]), density=0.7)
        return lambda pool: F.conv1d(pool[i].reshape(1, 1, n), kernel, padding=1).reshape(-1)
    if kind == 12:
        count = m % n + 1 if m >= m % n + 1 else m
        count = min(count, n)
        where = torch.tensor(rng.sample(range(n), count))
        return lambda pool: torch.zeros(n).scatter(0, where, pool[j][:count]) + pool[i]
    if kind == 13:
        index = _indices(rng, n, 2 * n).reshape(2, n)
        return lambda pool: torch.gather(pool[i].reshape(1, n).expand(2, n), 1, index).reshape(-1)
    if kind == 14:
        return lambda pool: pool[i][:1].expand(n) * pool[i] + pool[i].reshape(-1, 1).expand(n, 2).reshape(-1)[:n]
    where = _indices(rng, n, 2)
    count = min(2, m)

    def write(pool):
        y = pool[i].clone()
        y[where[:count]] = pool[j][:count]
        return y
    return write


def random_function(seed):
    """A random composition of 2-6 steps over the input and its intermediates."""
    rng = random.Random(seed)
    pool, steps = [torch.ones(SIZE)], []
    for _ in range(rng.randrange(2, 7)):
        steps.append(_step(rng, [len(t) for t in pool]))
        pool.append(steps[-1](pool))

    def func(x):
        pool = [x]
        for step in steps:
            pool.append(step(pool))
        return pool[-1]
    return func


def random_scalar(seed):
    inner = random_function(seed)
    rng = random.Random(seed + 2)
    weights = torch.randn(3 * SIZE * SIZE, generator=torch.Generator().manual_seed(seed))
    closing = rng.choice([lambda y: (torch.sin(y) * weights[:len(y)]).sum(), lambda y: (y * y.roll(1)).sum(),
                          lambda y: y.sum() ** 2, lambda y: torch.logsumexp(y, 0)])
    return lambda x: closing(inner(x))


def _points(seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(SIZE, generator=generator) + 0.3 for _ in range(2)]


def _quiet(detect, func, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return detect(func, x).toarray()


def check_jacobian(seed):
    func = random_function(seed)
    x, other = _points(seed)
    found = _quiet(structural_pattern, func, x)
    for point in (x, other):
        truth = (torch.func.jacfwd(func)(point).reshape(found.shape) != 0).numpy()
        assert (found | ~truth).all(), f"seed {seed}: detected Jacobian pattern misses {(truth & ~found).sum()} nonzeros"


def check_hessian(seed):
    func = random_scalar(seed)
    x, other = _points(seed)
    found = _quiet(detect_hessian_pattern, func, x)
    found = found | found.T
    for point in (x, other):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # vmap fallbacks in backward ops
            truth = (torch.func.hessian(func)(point) != 0).numpy()
        assert (found | ~truth).all(), f"seed {seed}: detected Hessian pattern misses {(truth & ~found).sum()} nonzeros"


CI_SEEDS = range(60)
SLOW_SEEDS = range(60, 300)


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_detected_jacobian_is_never_a_subset(seed):
    check_jacobian(seed)


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_detected_hessian_is_never_a_subset(seed):
    check_hessian(1000 + seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_detected_patterns_are_never_subsets_full_sweep(seed):
    check_jacobian(seed)
    check_hessian(1000 + seed)
