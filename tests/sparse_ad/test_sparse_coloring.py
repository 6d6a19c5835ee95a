"""Colourings: validity on random patterns (checked structurally), the checker can fail, counts on the benchmark problems."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from torch_fwdad.sparse_ad import (
    ORDERINGS, Coloring, acyclic_coloring, column_coloring, is_valid_coloring, row_coloring, star_coloring,
)
from torch_fwdad.sparse_ad.coloring import greedy_coloring, vertex_order
from torch_fwdad.sparse_ad.detection import structural_pattern
from torch_fwdad.sparse_ad.examples import PROBLEMS
from torch_fwdad.sparse_ad.patterns import adjacency, as_bool_csr, column_intersection_graph, symmetrized

COLORINGS = {"column": column_coloring, "row": row_coloring, "star": star_coloring, "acyclic": acyclic_coloring}


def random_pattern(seed, m=40, n=40, density=0.08, symmetric=False):
    rng = np.random.default_rng(seed)
    pattern = as_bool_csr(sp.random_array((m, n), density=density, rng=rng) != 0)
    return symmetrized(pattern) if symmetric else pattern


@pytest.mark.parametrize("ordering", ORDERINGS)
@pytest.mark.parametrize("kind", list(COLORINGS))
@pytest.mark.parametrize("seed", range(6))
def test_colorings_are_valid_on_random_patterns(kind, ordering, seed):
    symmetric = kind in ("star", "acyclic")
    pattern = random_pattern(seed, m=40, n=40 if symmetric else 30, density=0.05 + 0.03 * seed, symmetric=symmetric)
    result = COLORINGS[kind](pattern, ordering)
    assert is_valid_coloring(pattern, result)
    assert result.lower_bound <= result.num_colors
    assert result.colors.shape == (pattern.shape[0] if kind in ("row", "star", "acyclic") else pattern.shape[1],)


def _coloring(kind, colors):
    colors = np.asarray(colors)
    return Coloring(colors, int(colors.max()) + 1, 0, kind, "natural")


def test_checker_rejects_invalid_colorings():
    path4 = as_bool_csr(sp.diags_array([np.ones(3), np.ones(3)], offsets=[-1, 1], shape=(4, 4)))
    assert not is_valid_coloring(path4, _coloring("star", [0, 1, 0, 1]))  # two-coloured P4
    assert is_valid_coloring(path4, _coloring("acyclic", [0, 1, 0, 1]))  # ... but no cycle
    assert not is_valid_coloring(path4, _coloring("acyclic", [0, 0, 1, 1]))  # not even proper
    cycle4 = as_bool_csr(path4 + sp.csr_array(([True, True], ([0, 3], [3, 0])), shape=(4, 4)))
    assert not is_valid_coloring(cycle4, _coloring("acyclic", [0, 1, 0, 1]))
    tridiagonal = as_bool_csr(sp.diags_array([np.ones(4), np.ones(5), np.ones(4)], offsets=[-1, 0, 1]))
    assert not is_valid_coloring(tridiagonal, _coloring("column", [0, 1, 0, 1, 0]))
    assert is_valid_coloring(tridiagonal, _coloring("column", [0, 1, 2, 0, 1]))


@pytest.mark.parametrize("ordering", ["natural", "largest_first", "smallest_last"])
def test_greedy_matches_networkx_on_the_same_order(ordering):
    graph = column_intersection_graph(random_pattern(3, 60, 50, 0.06))
    order = vertex_order(graph, ordering)
    ours = greedy_coloring(graph, order)
    nx_graph = nx.from_scipy_sparse_array(graph)
    nx_graph.add_nodes_from(range(graph.shape[0]))
    theirs = nx.greedy_color(nx_graph, strategy=lambda g, colors: iter(order))
    assert ours.tolist() == [theirs[v] for v in range(graph.shape[0])]


def test_smallest_last_matches_networkx_degeneracy_bound():
    graph = adjacency(random_pattern(5, 80, 80, 0.05, symmetric=True))
    nx_graph = nx.from_scipy_sparse_array(graph)
    degeneracy = max(nx.core_number(nx_graph).values())
    assert greedy_coloring(graph, vertex_order(graph, "smallest_last")).max() + 1 <= degeneracy + 1


def _structural(name, **size):
    func, x, kind = PROBLEMS[name](**size)
    if kind == "hessian":
        return structural_pattern(torch.func.grad(func), x)
    return structural_pattern(func, x)


def test_counts_on_benchmark_problems_meet_the_published_ones():
    brusselator = _structural("brusselator", N=32)
    assert brusselator.nnz == 12_288
    assert column_coloring(brusselator).num_colors < 12  # asdex: 12
    assert column_coloring(brusselator).lower_bound == 6
    laplacian = _structural("laplacian_hessian", side=16)
    assert star_coloring(laplacian).num_colors <= 5
    assert acyclic_coloring(laplacian).num_colors == 3  # published optimum 3: see docs/sparse.md
    assert acyclic_coloring(laplacian, refine=0).greedy_num_colors == 4  # smallest-allowed greedy alone
    assert column_coloring(laplacian).num_colors == 5  # published: 5 (the row bound); greedy alone: 7
    assert column_coloring(laplacian, refine=0).num_colors == 7
    arrow = _structural("arrowhead_hessian", n=200)
    assert star_coloring(arrow).num_colors == 2
    assert column_coloring(arrow).num_colors == 200
    assert column_coloring(_structural("tridiagonal", n=1000)).num_colors == 3


@pytest.mark.parametrize("kind", list(COLORINGS))
@pytest.mark.parametrize("seed", range(4))
def test_refinement_never_adds_colours_and_stays_valid(kind, seed):
    symmetric = kind in ("star", "acyclic")
    pattern = random_pattern(seed, m=50, n=50 if symmetric else 40, density=0.06 + 0.02 * seed, symmetric=symmetric)
    plain = COLORINGS[kind](pattern, "natural", refine=0)
    better = COLORINGS[kind](pattern, "natural", refine=12)
    assert is_valid_coloring(pattern, better)
    # plain.num_colors == greedy count, except acyclic, which also tries distance-2 candidates
    assert better.lower_bound <= better.num_colors <= plain.num_colors <= plain.greedy_num_colors
    assert plain.greedy_num_colors == better.greedy_num_colors
    if kind != "acyclic":
        assert plain.num_colors == plain.greedy_num_colors
    assert (better.refine, plain.refine) == (12, 0)


def test_refine_rejects_bad_values():
    with pytest.raises(ValueError, match="refine"):
        column_coloring(random_pattern(0), refine=-1)
