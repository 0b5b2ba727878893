"""The graph genome: compile, render, round trip, canonical key, validation, init and mutation."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lossevo.errors import GenomeError
from lossevo.genome import GraphGenome, GraphSpace, Node, genome_from_dict, graph, load_genome_file
from lossevo.genome.ops import BINARY_NAMES, OPS, UNARY_NAMES
from lossevo.losses.published import GENOMES

EPS = 1e-7


def nl1_by_hand(y: torch.Tensor, yhat: torch.Tensor) -> torch.Tensor:
    h = yhat / torch.sqrt(1 + (yhat / (y + EPS)) ** 2)
    return -(torch.log(torch.abs(h) + EPS) + h).sum(dim=1)


def test_compiled_genome_matches_the_formula_written_by_hand() -> None:
    g = GENOMES["neuroloss1"]
    yhat = torch.softmax(torch.randn(16, 10, dtype=torch.float64), 1)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (16,)), 10).double()
    got = g.sign * g.compile()(y, yhat)
    torch.testing.assert_close(got, nl1_by_hand(y, yhat))


def test_compiled_genome_has_autograd() -> None:
    logits = torch.randn(8, 5, requires_grad=True)
    y = torch.nn.functional.one_hot(torch.randint(0, 5, (8,)), 5).float()
    GENOMES["neuroloss2"].compile()(y, torch.softmax(logits, 1)).sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_constants_and_unused_nodes() -> None:
    g = graph(
        [("add", ["one", "minus_one"]), ("mul", ["yhat", "y"]), ("exp", ["h3"]), ("neg", ["h2"])],
        ("sub", ["h1", "h0"]),
    )
    # h2 <-> h3 form a cycle, but neither is reachable from the root: the genome is valid.
    y = torch.tensor([[0.0, 1.0]])
    yhat = torch.tensor([[0.25, 0.75]])
    assert torch.allclose(g.compile()(y, yhat), torch.tensor([0.75]))
    assert g.active_order() == ("h1", "h0", "root")
    assert "exp" not in g.source()


def test_equation_and_latex() -> None:
    g = GENOMES["neuroloss3"]
    assert g.equation().startswith("L = -Σ_c [")
    assert "Min(y, yhat/(epsilon + y))" in g.equation()
    assert g.latex().startswith(r"\mathcal{L} = -\sum_{c}")
    assert r"\hat{y}" in g.latex()
    assert "I_{0}" not in GENOMES["bessel"].latex() and "i0e" in GENOMES["bessel"].latex()


def test_json_and_yaml_round_trip(tmp_path) -> None:
    g = GENOMES["neuroloss2"]
    assert genome_from_dict(json.loads(g.to_json())) == g
    assert genome_from_dict(yaml.safe_load(yaml.safe_dump(g.to_dict()))) == g
    for suffix in (".json", ".yaml"):
        path = tmp_path / f"g{suffix}"
        path.write_text(json.dumps(g.to_dict()) if suffix == ".json" else yaml.safe_dump(g.to_dict()))
        loaded = load_genome_file(path)
        assert loaded == g and loaded.key() == g.key()


def test_canonical_key_ignores_what_does_not_change_the_loss() -> None:
    base = graph([("ln", ["yhat"]), ("mul", ["y", "h0"]), ("neg", ["y"]), ("neg", ["y"])], ("neg", ["h1"]))
    unused_changed = graph(
        [("ln", ["yhat"]), ("mul", ["y", "h0"]), ("exp", ["h0"]), ("sin", ["one"])], ("neg", ["h1"])
    )
    commuted = graph(
        [("ln", ["yhat"]), ("mul", ["h0", "y"]), ("neg", ["y"]), ("neg", ["y"])], ("neg", ["h1"])
    )
    renumbered = graph(
        [("neg", ["y"]), ("mul", ["y", "h3"]), ("neg", ["y"]), ("ln", ["yhat"])], ("neg", ["h1"])
    )
    assert base.key() == unused_changed.key() == commuted.key() == renumbered.key()
    assert base.key() != base.with_sign(-1).key()
    non_commutative = graph([("ln", ["yhat"]), ("sub", ["y", "h0"])], ("neg", ["h1"]))
    swapped = graph([("ln", ["yhat"]), ("sub", ["h0", "y"])], ("neg", ["h1"]))
    assert non_commutative.key() != swapped.key()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "space": "graph",
                "hidden": [{"op": "nope", "inputs": ["y"]}],
                "root": {"op": "add", "inputs": ["h0", "yhat"]},
            },
            "unknown op 'nope'",
        ),
        (
            {
                "space": "graph",
                "hidden": [{"op": "add", "inputs": ["y"]}],
                "root": {"op": "add", "inputs": ["h0", "yhat"]},
            },
            "takes 2 input(s), got 1",
        ),
        (
            {
                "space": "graph",
                "hidden": [{"op": "ln", "inputs": ["h1"]}, {"op": "exp", "inputs": ["h0"]}],
                "root": {"op": "mul", "inputs": ["h0", "y"]},
            },
            "cycle among active nodes",
        ),
        (
            {
                "space": "graph",
                "hidden": [{"op": "ln", "inputs": ["zz"]}],
                "root": {"op": "add", "inputs": ["h0", "y"]},
            },
            "input 'zz'",
        ),
        (
            {
                "space": "graph",
                "hidden": [{"op": "ln", "inputs": ["yhat"]}],
                "root": {"op": "add", "inputs": ["h0", "one"]},
            },
            "does not depend on y",
        ),
        ({"space": "graph", "hidden": [{"op": "ln", "inputs": ["yhat"]}]}, "missing 'root'"),
        (
            {
                "space": "graph",
                "hidden": [{"inputs": ["yhat"]}],
                "root": {"op": "add", "inputs": ["h0", "y"]},
            },
            "node h0 must be a mapping",
        ),
        (
            {"space": "graph", "hidden": [], "root": {"op": "add", "inputs": ["y", "yhat"]}, "sign": 2},
            "'sign' must be 1 or -1",
        ),
        ({"space": "trees"}, "unknown genome space 'trees'"),
        (["not", "a", "mapping"], "must be a mapping"),
    ],
)
def test_invalid_genomes_give_one_clear_error(data, message: str) -> None:
    with pytest.raises(GenomeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        genome_from_dict(data)


def test_bad_genome_files(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenomeError, match="not valid JSON/YAML"):
        load_genome_file(bad)
    with pytest.raises(GenomeError, match="does not exist"):
        load_genome_file(tmp_path / "missing.yaml")


# ---------------------------------------------------------------------------- init and mutation
SPACE = GraphSpace()


def test_random_init_follows_the_authors_code() -> None:
    rng = np.random.default_rng(0)
    genomes = [SPACE.random(rng) for _ in range(4000)]
    hidden_unary = np.mean([OPS[n.op].arity == 1 for g in genomes for n in g.hidden])
    root_binary = np.mean([OPS[g.root.op].arity == 2 for g in genomes])
    assert abs(hidden_unary - 0.7) < 0.02
    assert abs(root_binary - 0.8) < 0.02
    # The root always takes at least one hidden node; no node takes itself.
    assert all(any(r.startswith("h") for r in g.root.inputs) for g in genomes)
    assert all(f"h{i}" not in n.inputs for g in genomes for i, n in enumerate(g.hidden))
    # Every op is drawn.
    assert {n.op for g in genomes for n in (*g.hidden, g.root)} == set(OPS)


def _changed_nodes(parent: GraphGenome, child: GraphGenome) -> list[tuple[str, Node, Node]]:
    pairs = [(f"h{i}", a, b) for i, (a, b) in enumerate(zip(parent.hidden, child.hidden, strict=True))]
    pairs.append(("root", parent.root, child.root))
    return [(name, a, b) for name, a, b in pairs if a != b]


def test_mutation_rates_and_rules() -> None:
    parent = GENOMES["neuroloss3"]  # active: h0, h1, h2, h3 and the root; binary and unary nodes
    active = set(parent.active_order())
    rng = np.random.default_rng(1)
    kinds: Counter[str] = Counter()
    picked: Counter[str] = Counter()
    n = 6000
    for _ in range(n):
        child = SPACE.mutate(parent, rng)
        assert child.sign == 1  # the child's sign is decided anew by the integrity check
        changed = _changed_nodes(parent, child)
        assert len(changed) == 1, "exactly one node changes"
        name, old, new = changed[0]
        assert name in active, "only the root or an active hidden node is mutated"
        picked[name] += 1
        old_arity, new_arity = OPS[old.op].arity, OPS[new.op].arity
        if old_arity != new_arity:
            kinds["arity"] += 1
            if new_arity == 2:
                assert old.inputs[0] in new.inputs, "the unary node's input is kept, first or second"
            else:
                assert new.inputs[0] in old.inputs
        elif old.op != new.op:
            kinds["op"] += 1
            assert new.inputs == old.inputs
        else:
            kinds["input"] += 1
            if old_arity == 2 and new.inputs == old.inputs[::-1]:
                kinds["swap"] += 1
            assert name not in new.inputs
    assert abs(kinds["op"] / n - 0.70) < 0.025
    assert abs(kinds["arity"] / n - 0.15) < 0.02
    assert abs(kinds["input"] / n - 0.15) < 0.02
    # Node choice is uniform over the root and the four active hidden nodes.
    assert all(abs(picked[k] / n - 0.2) < 0.025 for k in active)
    # Among input changes of binary nodes, 20% swap the two inputs.
    binary_inputs = kinds["input"] * 4 / 5  # h0, h1, h3 and the root are binary; h2 (ln) is unary
    assert 0.14 < kinds["swap"] / binary_inputs < 0.26


def test_op_changes_keep_arity() -> None:
    rng = np.random.default_rng(2)
    g = GENOMES["bessel"]
    for _ in range(500):
        child = SPACE.mutate(g, rng)
        for _, old, new in _changed_nodes(g, child):
            if old.inputs == new.inputs and old.op != new.op:
                assert (old.op in UNARY_NAMES) == (new.op in UNARY_NAMES)
                assert (old.op in BINARY_NAMES) == (new.op in BINARY_NAMES)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_genomes_round_trip_and_compile(seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = SPACE.random(rng)
    for genome in (g, SPACE.mutate(g, rng)):
        assert GraphGenome.from_dict(genome.to_dict()) == genome
        if genome.structure_problem() is None:
            again = genome_from_dict(json.loads(genome.to_json()))
            assert again.key() == genome.key()
            y = torch.tensor([[0.0, 1.0, 0.0], [0.3, 0.3, 0.4]])
            yhat = torch.softmax(torch.randn(2, 3), 1)
            assert genome.compile()(y, yhat).shape == (2,)
        else:
            with pytest.raises(GenomeError):
                genome.validate()


def test_a_unary_node_made_binary_gains_its_input_first_or_second() -> None:
    import numpy as np

    from lossevo.genome import GraphSpace, graph

    space = GraphSpace(p_change_op=0.0, p_swap_arity=1.0)  # every mutation swaps arity
    parent = graph([("ln", ["yhat"]), ("neg", ["y"]), ("neg", ["y"]), ("neg", ["y"])], ("mul", ["h0", "h1"]))
    rng = np.random.default_rng(0)
    first = second = 0
    for _ in range(1000):
        child = space.mutate(parent, rng)
        for before, after in zip((*parent.hidden, parent.root), (*child.hidden, child.root), strict=True):
            if len(before.inputs) == 1 and len(after.inputs) == 2 and after.inputs[0] != after.inputs[1]:
                first += after.inputs[1] == before.inputs[0]  # the new input went first
                second += after.inputs[0] == before.inputs[0]
    assert first + second > 400 and 0.42 < first / (first + second) < 0.58, (first, second)


def test_an_empty_op_list_is_refused_and_the_full_list_is_the_default_on_resume() -> None:
    """#27.8: space.unary_ops=[] once meant every op; null and the full list are the same space."""
    from lossevo.genome.graph import same_ops
    from lossevo.genome.ops import BINARY_NAMES, UNARY_NAMES

    for key in ("unary_ops", "binary_ops"):
        with pytest.raises(GenomeError, match=rf"space\.{key}=\[\] names no op"):
            GraphSpace(**{key: []})
    target = "lossevo.genome.GraphSpace"
    full = {
        "space._target_": target,
        "space.unary_ops": list(reversed(UNARY_NAMES)),
        "space.binary_ops": list(BINARY_NAMES),
    }
    default = {"space._target_": target, "space.unary_ops": None, "space.binary_ops": None}
    assert same_ops(full) == same_ops(default) == default
    fewer = {**default, "space.unary_ops": ["ln", "exp"]}
    assert same_ops(fewer) == fewer
