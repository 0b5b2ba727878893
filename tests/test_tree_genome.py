"""GP trees (GLO and NGL primitive sets): compile, render, round trip, keys, operators."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest
import torch
import yaml

from lossevo.errors import GenomeError
from lossevo.genome import TreeGenome, TreeNode, TreeSpace, genome_from_dict, load_genome_file
from lossevo.genome.integrity import IntegrityChecker
from lossevo.genome.tree import const, leaf, op
from lossevo.losses.published import GENOMES

Y = torch.tensor([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
YHAT = torch.tensor([[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]], dtype=torch.float64)
Z = torch.log(YHAT) + 0.7


def test_ngl_tree_compiles_to_its_formula() -> None:
    got = GENOMES["ngl"].compile()(Y, YHAT, Z)
    want = (torch.exp(2.4092 - YHAT - YHAT * Y) - torch.cos(torch.cos(torch.sin(YHAT)))).mean(1)
    torch.testing.assert_close(got, want)


def test_glo_protected_ops_and_reduction() -> None:
    # -(1/n) Σ [sqrt(|y - 1| + ε) * ln(|ŷ| + ε) / (ŷ² + ε)]
    tree = op(
        "div",
        op("mul", op("sqrt", op("sub", leaf("y"), const(1))), op("ln", leaf("yhat"))),
        op("square", leaf("yhat")),
    )
    g = TreeGenome(tree, primitives="glo")
    eps = 1e-7
    want = -(torch.sqrt((Y - 1).abs() + eps) * torch.log(YHAT.abs() + eps) / (YHAT**2 + eps)).mean(1)
    torch.testing.assert_close(g.compile()(Y, YHAT, Z), want)
    assert g.equation().startswith("L = -(1/n) Σ_c [")
    assert g.with_sign(-1).equation().startswith("L = (1/n) Σ_c [")


def test_protected_division_keeps_the_sign_of_its_denominator() -> None:
    g = TreeGenome(op("div", leaf("y"), op("mul", leaf("yhat"), const(-1))), primitives="ngl")
    value = g.compile()(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), None)
    assert torch.isfinite(value).all() and float(value) < 0  # 1 / (-0 - ε), not 1 / (0 + ε)


def test_logit_leaf_receives_the_logits() -> None:
    g = GENOMES["fastlogit"]
    want = -((Z - Y) * (Y / (YHAT + 1e-7) - (Z + 2))).mean(1)
    torch.testing.assert_close(g.compile()(Y, YHAT, Z), want)
    assert "z" in g.equation()


def test_coefficients_are_the_cma_vector_in_pre_order() -> None:
    baikal, tuned = GENOMES["baikal"], GENOMES["baikal_cma"]
    assert baikal.coefficients() == [1.0] * 6
    assert tuned.coefficients() == [2.7279, 0.9863, 1.5352, -1.1135, 1.3716, -0.8411]
    assert baikal.with_coefficients(tuned.coefficients()) == tuned
    with pytest.raises(GenomeError, match="has 6 coefficients, got 2"):
        baikal.with_coefficients([1.0, 2.0])


def test_round_trip_and_files(tmp_path) -> None:
    for g in (GENOMES["ngl"], GENOMES["baikal_cma"], GENOMES["fastlogit"]):
        assert genome_from_dict(json.loads(g.to_json())) == g
        path = tmp_path / "t.yaml"
        path.write_text(yaml.safe_dump(g.to_dict()))
        assert load_genome_file(path).key() == g.key()


def test_canonical_key_follows_algebra() -> None:
    def key(tree: TreeNode) -> str:
        return TreeGenome(tree, primitives="ngl").key()

    a = op("add", op("mul", leaf("y"), leaf("yhat")), op("sin", leaf("yhat")))
    b = op("add", op("sin", leaf("yhat")), op("mul", leaf("yhat"), leaf("y")))  # commuted
    c = op("add", op("add", op("mul", leaf("y"), leaf("yhat")), const(0)), op("sin", leaf("yhat")))  # + 0
    d = op("sub", op("sin", leaf("yhat")), op("neg", op("mul", leaf("y"), leaf("yhat"))))  # s - (-m)
    assert key(a) == key(b) == key(c) == key(d)
    assert key(op("mul", leaf("y"), leaf("yhat"))) != key(op("div", leaf("y"), leaf("yhat")))
    # ε stays symbolic: yhat * y/(y+ε) + y is not yhat + y.
    with_ratio = op("add", op("mul", leaf("yhat"), op("div", leaf("y"), leaf("y"))), leaf("y"))
    assert key(with_ratio) != key(op("add", leaf("yhat"), leaf("y")))
    product = op("mul", leaf("y"), leaf("yhat"))
    assert TreeGenome(product, "ngl").key() != TreeGenome(product, "glo").key()  # other reduction


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"space": "tree", "primitives": "glo", "tree": {"op": "sin", "args": [{"leaf": "y"}]}},
            "unknown op 'sin' for the glo",
        ),
        ({"space": "tree", "tree": {"op": "add", "args": [{"leaf": "y"}]}}, "takes 2 input(s), got 1"),
        (
            {"space": "tree", "tree": {"op": "add", "args": [{"leaf": "y"}, {"leaf": "w"}]}},
            "unknown leaf 'w'",
        ),
        (
            {"space": "tree", "tree": {"op": "add", "args": [{"leaf": "y"}, {"const": 2}]}},
            "does not contain yhat",
        ),
        ({"space": "tree", "tree": {"op": "add"}}, "needs a list 'args'"),
        ({"space": "tree"}, "missing 'tree'"),
        ({"space": "tree", "primitives": "koza", "tree": {"leaf": "y"}}, "unknown primitive set 'koza'"),
        (
            {"space": "tree", "tree": {"op": "add", "args": [{"leaf": "y"}, {"const": "x"}]}},
            "must be a number",
        ),
    ],
)
def test_invalid_trees_give_one_clear_error(data, message: str) -> None:
    with pytest.raises(GenomeError, match=re.escape(message)):
        genome_from_dict(data)


# ---------------------------------------------------------------------------- the search space
NGL = TreeSpace(primitives="ngl")
GLO = TreeSpace(primitives="glo", init_min_height=0, init_max_height=2, mutation="glo")


@pytest.mark.parametrize("space", [NGL, GLO], ids=["ngl", "glo"])
def test_random_trees_respect_the_limits(space: TreeSpace) -> None:
    rng = np.random.default_rng(0)
    trees = [space.random(rng) for _ in range(300)]
    assert all(g.structure_problem() is None for g in trees)  # y and yhat always present
    assert all(space.init_min_height <= g.root.height() <= space.init_max_height for g in trees)
    assert all(g.root.size() <= space.max_size for g in trees)
    ops_used = {n.op for g in trees for _, n in g.root.walk()}
    assert set(space.pset.ops) <= ops_used


def test_glo_draws_by_its_weights() -> None:
    rng = np.random.default_rng(1)
    counts = Counter(GLO._draw(rng, GLO._op_choices + GLO._leaf_choices) for _ in range(20000))
    # ln, y, yhat: 3; sqrt: 2; +, -, ×, ÷, x², 1, -1: 1 (1 and -1 share the 'const' draw).
    assert counts["ln"] / counts["add"] == pytest.approx(3, rel=0.15)
    assert counts["sqrt"] / counts["add"] == pytest.approx(2, rel=0.15)
    assert counts["const"] / counts["add"] == pytest.approx(2, rel=0.15)
    assert counts["y"] / counts["yhat"] == pytest.approx(1, rel=0.15)


def test_subtree_crossover_swaps_subtrees() -> None:
    rng = np.random.default_rng(2)
    a, b = NGL.random(rng), NGL.random(rng)
    for _ in range(50):
        ca, cb = NGL.crossover(a, b, rng)
        assert ca.root.size() + cb.root.size() == a.root.size() + b.root.size()
        subtrees_a = {repr(n) for _, n in a.root.walk()}
        subtrees_b = {repr(n) for _, n in b.root.walk()}
        # each child is a parent with one subtree taken from the other parent
        assert any(repr(n) in subtrees_b for _, n in ca.root.walk())
        assert any(repr(n) in subtrees_a for _, n in cb.root.walk())


def test_crossover_respects_the_size_limit() -> None:
    small = TreeSpace(primitives="ngl", max_size=12, init_max_height=3, init_min_height=2)
    rng = np.random.default_rng(3)
    for _ in range(200):
        a, b = small.random(rng), small.random(rng)
        for child in small.crossover(a, b, rng):
            assert child.root.size() <= 12


def test_one_point_mutation_changes_one_node_and_keeps_arity() -> None:
    rng = np.random.default_rng(4)
    g = GENOMES["ngl"]
    for _ in range(200):
        child = NGL.one_point_mutation(g, rng)
        diff = [
            (a, b)
            for (_, a), (_, b) in zip(g.root.walk(), child.root.walk(), strict=False)
            if (a.op, a.value) != (b.op, b.value)
        ]
        assert child.root.size() == g.root.size() and len(diff) <= 1
        for a, b in diff:
            assert a.is_leaf == b.is_leaf
            if not a.is_leaf:
                assert NGL.pset.ops[a.op].arity == NGL.pset.ops[b.op].arity


def test_glo_mutation_rates() -> None:
    """Bottom-up GLO mutations: integers ±1 at 5%, same-arity replacement at 5% per node."""
    rng = np.random.default_rng(5)
    g = TreeGenome(op("add", const(1), op("mul", leaf("y"), leaf("yhat"))), primitives="glo")
    stepped = replaced = 0
    n = 4000
    only_integer = TreeSpace(primitives="glo", mutation="glo", p_replace=0, p_to_leaf=0, p_to_subtree=0)
    only_replace = TreeSpace(primitives="glo", mutation="glo", p_integer=0, p_to_leaf=0, p_to_subtree=0)
    for _ in range(n):
        stepped += only_integer.glo_mutation(g, rng).root.args[0].value in (0.0, 2.0)
        replaced += only_replace.glo_mutation(g, rng).root.op != "add"
    assert stepped / n == pytest.approx(0.05, abs=0.012)
    # the root 'add' is replaced by a weighted draw among +, -, ×, ÷ (1 in 4 keeps 'add')
    assert replaced / n == pytest.approx(0.05 * 3 / 4, abs=0.012)


def test_mutate_always_changes_the_tree() -> None:
    rng = np.random.default_rng(6)
    for space in (NGL, GLO):
        g = space.random(rng)
        for _ in range(30):
            assert space.mutate(g, rng).root != g.root


def test_published_trees_pass_the_integrity_check() -> None:
    check = IntegrityChecker()
    for name in ("baikal", "baikal_cma", "fastlogit", "ngl"):
        result = check.check(GENOMES[name])
        assert result.ok and result.sign == 1, (name, result.reason)
    # Baikal's optimum: d/dp of -(1/2)[ln p - 1/p + ln(1-p)] = 0 at p = 1/sqrt(2).
    assert check.check(GENOMES["baikal"]).optimum == pytest.approx(2**-0.5, abs=0.002)
