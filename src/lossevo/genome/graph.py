"""The graph search space of Morgan & Hougen (2024): a NASNet-like cell of hidden nodes.

Inputs are ``y``, ``yhat``, ``one`` (1) and ``minus_one`` (-1). Hidden nodes ``h0..h3`` and the
``root`` each apply one unary or binary op to inputs or hidden nodes (reuse allowed; a hidden node
may reference any other hidden node, so cycles are possible and are rejected by :meth:`validate`).
The loss of one sample is the root's value summed over classes (the authors' reduction), times
the genome's sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from lossevo.errors import GenomeError
from lossevo.genome.base import Genome, PerSampleFn, register_space
from lossevo.genome.ops import BINARY_NAMES, NAMESPACE, OPS, SYM_Y, SYM_YHAT, UNARY_NAMES, Op

INPUTS: tuple[str, ...] = ("y", "yhat", "one", "minus_one")
ROOT = "root"
# Bounds on what can be checked and written out: a search uses a few hidden nodes and a few dozen
# terms; a crafted genome could reuse nodes until its written-out form has 2^60 terms.
MAX_HIDDEN = 64
MAX_EXPANDED = 10_000
_INPUT_SYMS: dict[str, sp.Expr] = {
    "y": SYM_Y,
    "yhat": SYM_YHAT,
    "one": sp.Integer(1),
    "minus_one": sp.Integer(-1),
}


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "inputs": list(self.inputs)}


def _hidden_name(i: int) -> str:
    return f"h{i}"


@register_space
@dataclass(frozen=True)
class GraphGenome(Genome):
    """Hidden nodes ``h0..h{n-1}`` plus a root node; see the module docstring."""

    space: ClassVar[str] = "graph"
    hidden: tuple[Node, ...]
    root: Node
    sign: int = 1
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    # ----------------------------------------------------------------- structure
    def node(self, name: str) -> Node:
        if name == ROOT:
            return self.root
        return self.hidden[int(name[1:])]

    def refs(self) -> tuple[str, ...]:
        """Every name a node may take as input."""
        return INPUTS + tuple(_hidden_name(i) for i in range(len(self.hidden)))

    def structure_problem(self) -> str | None:
        """Why the genome cannot be evaluated (bad op, arity, reference, cycle, missing input)."""
        if "problem" in self._cache:
            return self._cache["problem"]
        problem = self._find_problem()
        self._cache["problem"] = problem
        return problem

    def _find_problem(self) -> str | None:
        if len(self.hidden) > MAX_HIDDEN:  # the checks below recurse through the nodes
            return f"{len(self.hidden)} hidden nodes; a graph genome has at most {MAX_HIDDEN}"
        valid_refs = set(self.refs())
        for name in (*(_hidden_name(i) for i in range(len(self.hidden))), ROOT):
            node = self.node(name)
            if node.op not in OPS:
                return f"node {name}: unknown op {node.op!r} (known: {', '.join(OPS)})"
            arity = OPS[node.op].arity
            if len(node.inputs) != arity:
                return f"node {name}: op {node.op!r} takes {arity} input(s), got {len(node.inputs)}"
            for ref in node.inputs:
                if ref not in valid_refs:
                    return (
                        f"node {name}: input {ref!r} is neither an input "
                        f"({', '.join(INPUTS)}) nor a hidden node h0..h{len(self.hidden) - 1}"
                    )
        try:
            order = self.active_order()
        except GenomeError as err:
            return str(err)
        size: dict[str, int] = {}  # the expression's size written out: shared nodes count each time
        for name in order:
            size[name] = 1 + sum(size.get(ref, 1) for ref in self.node(name).inputs)
        if size[ROOT] > MAX_EXPANDED:  # canonical forms and sympy write it out
            reused = "nodes reused over and over"
            return f"the expression has more than {MAX_EXPANDED:,} terms written out ({reused})"
        used = {ref for name in order for ref in self.node(name).inputs}
        missing = [x for x in ("y", "yhat") if x not in used]
        if missing:
            return f"the root does not depend on {' and '.join(missing)}"
        return None

    def active_order(self) -> tuple[str, ...]:
        """Active nodes (reachable from the root) in evaluation order, root last.

        Raises :class:`GenomeError` on a cycle among active nodes.
        """
        if "order" in self._cache:
            return self._cache["order"]
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join((*path[path.index(name) :], name))
                raise GenomeError(f"cycle among active nodes: {cycle}")
            state[name] = 1
            for ref in self.node(name).inputs:
                if ref not in INPUTS:
                    visit(ref, (*path, name))
            state[name] = 2
            order.append(name)

        visit(ROOT, ())
        result = tuple(order)
        self._cache["order"] = result
        return result

    # ----------------------------------------------------------------- compile
    def source(self, signed: bool = False, name: str = "loss_fn") -> str:
        """Python source of the per-sample function that :meth:`compile` executes; it calls the ops
        of :meth:`ops` by their function names."""
        self.validate()
        lines = [f"def {name}(y, yhat, logits=None):"]
        order = self.active_order()
        used = {ref for node in order for ref in self.node(node).inputs}
        if "one" in used:
            lines.append("    one = yhat.new_tensor(1.0)")
        if "minus_one" in used:
            lines.append("    minus_one = yhat.new_tensor(-1.0)")
        for node_name in order:
            node = self.node(node_name)
            lines.append(f"    {node_name} = {OPS[node.op].function_name}({', '.join(node.inputs)})")
        negate = signed and self.sign < 0
        lines.append(f"    return {'-' if negate else ''}root.sum(dim=-1)")
        return "\n".join(lines) + "\n"

    def ops(self) -> list[Op]:
        return sorted({OPS[self.node(n).op] for n in self.active_order()}, key=lambda op: op.name)

    def compile(self, signed: bool = False) -> PerSampleFn:
        slot = "fn_signed" if signed else "fn"
        if slot not in self._cache:
            namespace: dict[str, Any] = dict(NAMESPACE)
            code = compile(self.source(signed), f"<graph genome {self.canonical()}>", "exec")
            exec(code, namespace)
            self._cache[slot] = namespace["loss_fn"]
        return self._cache[slot]

    # ----------------------------------------------------------------- render
    def expression(self) -> sp.Expr:
        if "expr" not in self._cache:
            self.validate()
            values: dict[str, sp.Expr] = dict(_INPUT_SYMS)
            for name in self.active_order():
                node = self.node(name)
                values[name] = OPS[node.op].sym(*(values[ref] for ref in node.inputs))
            self._cache["expr"] = values[ROOT]
        return self._cache["expr"]

    def canonical(self) -> str:
        if "canonical" not in self._cache:
            self.validate()
            memo: dict[str, str] = {}

            def text(ref: str) -> str:
                if ref in INPUTS:
                    return ref
                if ref not in memo:
                    node = self.node(ref)
                    args = [text(r) for r in node.inputs]
                    if OPS[node.op].commutative:
                        args.sort()
                    memo[ref] = f"{node.op}({','.join(args)})"
                return memo[ref]

            self._cache["canonical"] = text(ROOT)
        return self._cache["canonical"]

    # ----------------------------------------------------------------- data
    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "hidden": [n.to_dict() for n in self.hidden],
            "root": self.root.to_dict(),
            "sign": self.sign,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphGenome:
        unknown = set(data) - {"space", "hidden", "root", "sign"}
        if unknown:
            raise GenomeError(f"graph genome has unknown key(s): {', '.join(sorted(unknown))}")
        for key in ("hidden", "root"):
            if key not in data:
                raise GenomeError(f"graph genome is missing {key!r}")
        if not isinstance(data["hidden"], list):
            raise GenomeError("graph genome: 'hidden' must be a list of nodes")
        sign = data.get("sign", 1)
        if sign not in (1, -1):
            raise GenomeError(f"graph genome: 'sign' must be 1 or -1, got {sign!r}")
        hidden = tuple(_node_from_dict(n, _hidden_name(i)) for i, n in enumerate(data["hidden"]))
        return cls(hidden=hidden, root=_node_from_dict(data["root"], ROOT), sign=int(sign))

    def with_sign(self, sign: int) -> GraphGenome:
        return replace(self, sign=sign, _cache={})


def _node_from_dict(data: Any, name: str) -> Node:
    if not isinstance(data, dict) or "op" not in data or "inputs" not in data:
        raise GenomeError(f"node {name} must be a mapping with 'op' and 'inputs', got {data!r}")
    unknown = set(data) - {"op", "inputs"}
    if unknown:
        raise GenomeError(f"node {name} has unknown key(s): {', '.join(sorted(unknown))}")
    inputs = data["inputs"]
    if isinstance(inputs, str) or not all(isinstance(r, str) for r in inputs):
        raise GenomeError(f"node {name}: 'inputs' must be a list of names, got {inputs!r}")
    return Node(op=str(data["op"]), inputs=tuple(inputs))


class GraphSpace:
    """Random initialisation and mutation of graph genomes (docs/methods.md §1).

    The probabilities default to the authors' code: hidden nodes unary with 0.7, the root binary
    with 0.8; mutation changes a node's op (0.7), swaps its arity (0.15) or rewires an input
    (0.15; a binary node swaps its two inputs with 0.2, else rewires one of them). A unary node
    made binary keeps its input and gains a random one, first or second with equal chance (as the
    authors' code), under a newly drawn binary op.

    One difference from the authors' code, kept on purpose: a random root takes one hidden node
    and, when binary, a second input drawn from the inputs *and* the hidden nodes (so about 40%
    of random roots read ``y``, ``yhat``, 1 or -1 directly); their code gives both root inputs to
    hidden nodes. docs/methods.md §1 only asks that the root take at least one hidden node, and a root
    that reads an input directly expresses common losses (``y * f(yhat)``) in fewer nodes.
    """

    name = "graph"

    def __init__(
        self,
        hidden_nodes: int = 4,
        p_hidden_unary: float = 0.7,
        p_root_binary: float = 0.8,
        p_change_op: float = 0.7,
        p_swap_arity: float = 0.15,
        p_swap_inputs: float = 0.2,
        unary_ops: list[str] | None = None,
        binary_ops: list[str] | None = None,
    ) -> None:
        if not 1 <= hidden_nodes <= MAX_HIDDEN:
            raise GenomeError(
                f"space.hidden_nodes={hidden_nodes}: a graph space has 1 to {MAX_HIDDEN} hidden nodes"
            )
        self.hidden_nodes = hidden_nodes
        self.p_hidden_unary = p_hidden_unary
        self.p_root_binary = p_root_binary
        self.p_change_op = p_change_op
        self.p_swap_arity = p_swap_arity
        self.p_swap_inputs = p_swap_inputs
        for key, given in (("unary_ops", unary_ops), ("binary_ops", binary_ops)):
            if given is not None and len(given) == 0:
                raise GenomeError(f"space.{key}=[] names no op: name at least one, or null for all of them")
        self.unary_ops = tuple(unary_ops or UNARY_NAMES)
        self.binary_ops = tuple(binary_ops or BINARY_NAMES)
        for op in self.unary_ops + self.binary_ops:
            if op not in OPS:
                raise GenomeError(f"graph space: unknown op {op!r} (known: {', '.join(OPS)})")
        if any(OPS[o].arity != 1 for o in self.unary_ops):
            raise GenomeError("graph space: unary_ops lists a binary op")
        if any(OPS[o].arity != 2 for o in self.binary_ops):
            raise GenomeError("graph space: binary_ops lists a unary op")
        self.hidden_names = tuple(_hidden_name(i) for i in range(hidden_nodes))

    # ----------------------------------------------------------------- helpers
    def _refs_for(self, name: str) -> tuple[str, ...]:
        """What node ``name`` may take as input: inputs and hidden nodes other than itself."""
        return INPUTS + tuple(h for h in self.hidden_names if h != name)

    @staticmethod
    def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
        return options[int(rng.integers(len(options)))]

    def _random_node(self, rng: np.random.Generator, name: str, unary: bool) -> Node:
        refs = self._refs_for(name)
        if unary:
            return Node(self._pick(rng, self.unary_ops), (self._pick(rng, refs),))
        return Node(self._pick(rng, self.binary_ops), (self._pick(rng, refs), self._pick(rng, refs)))

    # ----------------------------------------------------------------- search operators
    def random(self, rng: np.random.Generator) -> GraphGenome:
        """A random genome; it may fail the integrity check (the caller retries)."""
        hidden = tuple(
            self._random_node(rng, h, unary=rng.random() < self.p_hidden_unary) for h in self.hidden_names
        )
        # The root takes at least one hidden node so the loss is not a single op on the inputs.
        anchor = self._pick(rng, self.hidden_names)
        if rng.random() < self.p_root_binary:
            other = self._pick(rng, self._refs_for(ROOT))
            inputs = (anchor, other) if rng.random() < 0.5 else (other, anchor)
            root = Node(self._pick(rng, self.binary_ops), inputs)
        else:
            root = Node(self._pick(rng, self.unary_ops), (anchor,))
        return GraphGenome(hidden=hidden, root=root)

    def mutate(self, genome: GraphGenome, rng: np.random.Generator) -> GraphGenome:
        """One mutation of the root or an active hidden node (docs/methods.md §1, MH-NLE App. B).

        The child has sign +1: its sign is decided anew by the integrity check on its own
        unflipped curve, never inherited from the parent.
        """
        try:
            active = [n for n in genome.active_order() if n != ROOT]
        except GenomeError:
            active = []
        name = self._pick(rng, [ROOT, *active])
        node = genome.node(name)
        refs = self._refs_for(name)
        arity = OPS[node.op].arity if node.op in OPS else len(node.inputs)
        r = rng.random()
        if r < self.p_change_op:
            pool = self.unary_ops if arity == 1 else self.binary_ops
            choices = [o for o in pool if o != node.op] or list(pool)
            new = Node(self._pick(rng, choices), node.inputs)
        elif r < self.p_change_op + self.p_swap_arity:
            if arity == 1:  # a binary op (the unary one has no binary form), the new input first or second
                added = self._pick(rng, refs)
                inputs = (node.inputs[0], added) if rng.random() < 0.5 else (added, node.inputs[0])
                new = Node(self._pick(rng, self.binary_ops), inputs)
            else:
                keep = node.inputs[int(rng.integers(2))]
                new = Node(self._pick(rng, self.unary_ops), (keep,))
        elif arity == 1:
            choices = [x for x in refs if x != node.inputs[0]]
            new = Node(node.op, (self._pick(rng, choices),))
        elif rng.random() < self.p_swap_inputs:
            new = Node(node.op, (node.inputs[1], node.inputs[0]))
        else:
            slot = int(rng.integers(2))
            choices = [x for x in refs if x != node.inputs[slot]]
            rewired = list(node.inputs)
            rewired[slot] = self._pick(rng, choices)
            new = Node(node.op, tuple(rewired))
        if name == ROOT:
            return GraphGenome(hidden=genome.hidden, root=new)
        hidden = list(genome.hidden)
        hidden[int(name[1:])] = new
        return GraphGenome(hidden=tuple(hidden), root=genome.root)


def graph(hidden: list[tuple[str, list[str]]], root: tuple[str, list[str]], sign: int = 1) -> GraphGenome:
    """Build a graph genome compactly: ``graph([("div", ["yhat", "y"]), ...], ("add", [...]))``."""
    genome = GraphGenome(
        hidden=tuple(Node(op, tuple(inputs)) for op, inputs in hidden),
        root=Node(root[0], tuple(root[1])),
        sign=sign,
    )
    genome.validate()
    return genome


def same_ops(flat: dict[str, Any]) -> dict[str, Any]:
    """A run identity with a graph space's full op list written as null (its default), so a resume
    that names every op (or leaves them out) is the same search."""
    if not str(flat.get("space._target_", "")).endswith("GraphSpace"):
        return flat
    out = dict(flat)
    for key, names in (("space.unary_ops", UNARY_NAMES), ("space.binary_ops", BINARY_NAMES)):
        value = out.get(key)
        if isinstance(value, list) and sorted(map(str, value)) == sorted(names) and len(value) == len(names):
            out[key] = None
    return out
