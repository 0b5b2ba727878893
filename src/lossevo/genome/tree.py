"""GP expression trees (GLO and NGL primitive sets), with the GP search operators.

A tree node is an op with children, or a leaf: ``y``, ``yhat``, ``logit`` (the logit ``z`` of the
class) or a constant. Every node carries a multiplicative coefficient (1 unless set), the vector
that GLO's CMA-ES phase optimises (:meth:`TreeGenome.coefficients`). The canonical form is the
sympy expression after sympy's automatic simplification (commutativity, associativity, like terms
and powers, constant folding), so trees that differ only by such rewrites share a cache key.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from lossevo.errors import GenomeError
from lossevo.genome.base import Genome, PerSampleFn, register_space
from lossevo.genome.ops import SYM_Y, SYM_YHAT, Op
from lossevo.genome.primitives import LEAVES, PrimitiveSet, primitive_set

SYM_Z = sp.Symbol("z", real=True)
Path = tuple[int, ...]


@dataclass(frozen=True)
class TreeNode:
    op: str  # an op of the primitive set, or a leaf: y | yhat | logit | const
    args: tuple[TreeNode, ...] = ()
    value: float = 0.0  # the constant of a 'const' leaf
    coef: float = 1.0

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAVES

    def size(self) -> int:
        return 1 + sum(a.size() for a in self.args)

    def height(self) -> int:
        return 0 if not self.args else 1 + max(a.height() for a in self.args)

    def walk(self, path: Path = ()) -> Iterator[tuple[Path, TreeNode]]:
        """Pre-order ``(path, node)`` pairs; a path is the child indices from the root."""
        yield path, self
        for i, child in enumerate(self.args):
            yield from child.walk((*path, i))

    def get(self, path: Path) -> TreeNode:
        node = self
        for i in path:
            node = node.args[i]
        return node

    def replace_at(self, path: Path, new: TreeNode) -> TreeNode:
        if not path:
            return new
        args = list(self.args)
        args[path[0]] = args[path[0]].replace_at(path[1:], new)
        return replace(self, args=tuple(args))

    def leaves(self) -> set[str]:
        return {node.op for _, node in self.walk() if node.is_leaf}

    def to_dict(self) -> dict[str, Any]:
        if self.op == "const":
            data: dict[str, Any] = {"const": self.value}
        elif self.is_leaf:
            data = {"leaf": self.op}
        else:
            data = {"op": self.op, "args": [a.to_dict() for a in self.args]}
        if self.coef != 1.0:
            data["coef"] = self.coef
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "root") -> TreeNode:
        if not isinstance(data, dict):
            raise GenomeError(f"tree node at {where} must be a mapping, got {data!r}")
        unknown = set(data) - {"op", "args", "leaf", "const", "coef"}
        if unknown:
            raise GenomeError(f"tree node at {where} has unknown key(s): {', '.join(sorted(unknown))}")
        coef = _number(data.get("coef", 1.0), f"{where}.coef")
        kinds = [k for k in ("op", "leaf", "const") if k in data]
        if len(kinds) != 1:
            raise GenomeError(f"tree node at {where} needs exactly one of 'op', 'leaf' or 'const'")
        if "args" in data and "op" not in data:
            raise GenomeError(f"tree node at {where}: a leaf or a constant takes no 'args'")
        if "const" in data:
            return cls("const", value=_number(data["const"], f"{where}.const"), coef=coef)
        if "leaf" in data:
            if data["leaf"] not in ("y", "yhat", "logit"):
                raise GenomeError(f"tree node at {where}: unknown leaf {data['leaf']!r} (y, yhat, logit)")
            return cls(str(data["leaf"]), coef=coef)
        args = data.get("args")
        if not isinstance(args, list):
            raise GenomeError(f"tree node at {where}: op {data['op']!r} needs a list 'args'")
        children = tuple(cls.from_dict(a, f"{where}.{i}") for i, a in enumerate(args))
        return cls(str(data["op"]), children, coef=coef)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GenomeError(f"tree node {where} must be a number, got {value!r}")
    return float(value)


def leaf(name: str, coef: float = 1.0) -> TreeNode:
    return TreeNode(name, coef=coef)


def const(value: float, coef: float = 1.0) -> TreeNode:
    return TreeNode("const", value=float(value), coef=coef)


def op(name: str, *args: TreeNode, coef: float = 1.0) -> TreeNode:
    return TreeNode(name, tuple(args), coef=coef)


@register_space
@dataclass(frozen=True)
class TreeGenome(Genome):
    """An expression tree over a primitive set (``glo`` or ``ngl``)."""

    space: ClassVar[str] = "tree"
    root: TreeNode
    primitives: str = "ngl"
    sign: int = 1
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def pset(self) -> PrimitiveSet:
        return primitive_set(self.primitives)

    def reduction(self) -> tuple[int, bool]:
        return self.pset.scale, True

    @property
    def uses_logits(self) -> bool:
        return "logit" in self.root.leaves()

    # ----------------------------------------------------------------- structure
    def structure_problem(self) -> str | None:
        if "problem" not in self._cache:
            self._cache["problem"] = self._find_problem()
        return self._cache["problem"]

    def _find_problem(self) -> str | None:
        try:
            pset = self.pset
        except GenomeError as err:
            return str(err)
        for path, node in self.root.walk():
            where = "root" + "".join(f".{i}" for i in path)
            if not (math.isfinite(node.coef) and math.isfinite(node.value)):
                return f"node {where}: non-finite coefficient or constant"
            if node.is_leaf:
                if node.args:
                    return f"node {where}: leaf {node.op!r} cannot have children"
                continue
            if node.op not in pset.ops:
                known = ", ".join(pset.ops)
                return (
                    f"node {where}: unknown op {node.op!r} for the {pset.name} primitive set (known: {known})"
                )
            arity = pset.ops[node.op].arity
            if len(node.args) != arity:
                return f"node {where}: op {node.op!r} takes {arity} input(s), got {len(node.args)}"
        missing = [x for x in ("y", "yhat") if x not in self.root.leaves()]
        if missing:
            return f"the tree does not contain {' and '.join(missing)}"
        return None

    # ----------------------------------------------------------------- compile
    def source(self, signed: bool = False, name: str = "loss_fn") -> str:
        """Python source of the per-sample function that :meth:`compile` executes; it calls the ops
        of :meth:`ops` by their function names."""
        self.validate()
        lines = [f"def {name}(y, yhat, logits=None):"]
        counter = itertools.count()
        leaf_names = {"y": "y", "yhat": "yhat", "logit": "logits"}

        def emit(node: TreeNode) -> str:
            if node.op == "const":
                const_name = f"c{next(counter)}"
                lines.append(f"    {const_name} = yhat.new_tensor({node.value!r})")
                expr = const_name
            elif node.is_leaf:
                expr = leaf_names[node.op]
            else:
                expr = f"{self.pset.op(node.op).function_name}({', '.join(emit(a) for a in node.args)})"
            if node.coef != 1.0:
                expr = f"{node.coef!r} * {expr}"
            if expr in leaf_names.values() or (expr.startswith("c") and expr[1:].isdigit()):
                return expr
            temp = f"t{next(counter)}"
            lines.append(f"    {temp} = {expr}")
            return temp

        result = emit(self.root)
        negative = self.pset.scale * (self.sign if signed else 1) < 0
        lines.append(f"    return {'-' if negative else ''}{result}.mean(dim=-1)")
        return "\n".join(lines) + "\n"

    def ops(self) -> list[Op]:
        used = {node.op for _, node in self.root.walk() if not node.is_leaf}
        return sorted({self.pset.op(name) for name in used}, key=lambda op: op.function_name)

    def compile(self, signed: bool = False) -> PerSampleFn:
        slot = "fn_signed" if signed else "fn"
        if slot not in self._cache:
            namespace: dict[str, Any] = dict(self.pset.namespace)
            exec(compile(self.source(signed), "<tree genome>", "exec"), namespace)
            self._cache[slot] = namespace["loss_fn"]
        return self._cache[slot]

    # ----------------------------------------------------------------- render
    def expression(self) -> sp.Expr:
        if "expr" not in self._cache:
            self.validate()
            self._cache["expr"] = _sympy(self.root, self.pset)
        return self._cache["expr"]

    def canonical(self) -> str:
        if "canonical" not in self._cache:
            self._cache["canonical"] = f"{self.primitives}|{sp.srepr(self.expression())}"
        return self._cache["canonical"]

    # ----------------------------------------------------------------- coefficients
    def coefficients(self) -> list[float]:
        """One coefficient per node, in pre-order (GLO's CMA-ES vector)."""
        return [node.coef for _, node in self.root.walk()]

    def with_coefficients(self, values: list[float] | np.ndarray) -> TreeGenome:
        paths = [path for path, _ in self.root.walk()]
        if len(values) != len(paths):
            raise GenomeError(f"this tree has {len(paths)} coefficients, got {len(values)}")
        root = self.root
        for path, value in zip(paths, values, strict=True):
            root = root.replace_at(path, replace(root.get(path), coef=float(value)))
        return TreeGenome(root=root, primitives=self.primitives, sign=self.sign)

    # ----------------------------------------------------------------- data
    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "primitives": self.primitives,
            "tree": self.root.to_dict(),
            "sign": self.sign,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeGenome:
        unknown = set(data) - {"space", "primitives", "tree", "sign"}
        if unknown:
            raise GenomeError(f"tree genome has unknown key(s): {', '.join(sorted(unknown))}")
        if "tree" not in data:
            raise GenomeError("tree genome is missing 'tree'")
        sign = data.get("sign", 1)
        if sign not in (1, -1):
            raise GenomeError(f"tree genome: 'sign' must be 1 or -1, got {sign!r}")
        primitives = str(data.get("primitives", "ngl"))
        primitive_set(primitives)
        return cls(root=TreeNode.from_dict(data["tree"]), primitives=primitives, sign=int(sign))

    def with_sign(self, sign: int) -> TreeGenome:
        return replace(self, sign=sign, _cache={})


def as_tree(genome: Genome) -> TreeGenome:
    """``genome`` as the tree it is (a tree strategy's members); anything else is a GenomeError."""
    if not isinstance(genome, TreeGenome):
        raise GenomeError(f"expected an expression tree, got a {genome.space} genome")
    return genome


def _sympy(node: TreeNode, pset: PrimitiveSet) -> sp.Expr:
    if node.op == "const":
        value: sp.Expr = (
            sp.Integer(int(node.value)) if float(node.value).is_integer() else sp.Float(node.value)
        )
    elif node.op == "y":
        value = SYM_Y
    elif node.op == "yhat":
        value = SYM_YHAT
    elif node.op == "logit":
        value = SYM_Z
    else:
        value = pset.ops[node.op].sym(*(_sympy(a, pset) for a in node.args))
    if node.coef != 1.0:
        coef = sp.Integer(int(node.coef)) if float(node.coef).is_integer() else sp.Float(node.coef)
        value = coef * value
    return value


# ------------------------------------------------------------------------------- search space
class TreeSpace:
    """Random trees and the GP operators over one primitive set.

    Defaults are NGL's (minimum height 2, maximum size 100, subtree mutation 0.3, one-point
    mutation 0.1); ``mutation="glo"`` uses GLO's bottom-up mutations instead (integer ±1 5%,
    same-arity replacement 5%, subtree -> leaf 2.5%, leaf -> subtree 2.5%).
    """

    name = "tree"

    def __init__(
        self,
        primitives: str = "ngl",
        logits: bool = False,
        init_min_height: int = 2,
        init_max_height: int = 4,
        max_size: int = 100,
        mutation_max_height: int = 3,
        mutation: str = "gp",
        p_subtree: float = 0.3,
        p_one_point: float = 0.1,
        p_integer: float = 0.05,
        p_replace: float = 0.05,
        p_to_leaf: float = 0.025,
        p_to_subtree: float = 0.025,
        max_tries: int = 1000,
    ) -> None:
        self.pset = primitive_set(primitives)
        if mutation not in ("gp", "glo"):
            raise GenomeError(f"tree space: mutation must be 'gp' or 'glo', got {mutation!r}")
        if init_min_height > init_max_height:
            raise GenomeError("tree space: init_min_height exceeds init_max_height")
        self.logits = logits
        self.init_min_height = init_min_height
        self.init_max_height = init_max_height
        self.max_size = max_size
        self.mutation_max_height = mutation_max_height
        self.mutation = mutation
        self.p_subtree, self.p_one_point = p_subtree, p_one_point
        self.p_integer, self.p_replace = p_integer, p_replace
        self.p_to_leaf, self.p_to_subtree = p_to_leaf, p_to_subtree
        self.max_tries = max_tries
        leaves = [(name, self.pset.weight(name)) for name in self.pset.leaves if name != "const"]
        if logits:
            leaves.append(("logit", self.pset.weight("logit")))
        # GLO's constants 1 and -1 are drawn as often as one op each.
        self._leaf_choices = [
            *leaves,
            ("const", self.pset.weight("const") * max(1, len(self.pset.constants))),
        ]
        self._op_choices = [(name, self.pset.weight(name)) for name in self.pset.ops]

    # ----------------------------------------------------------------- drawing
    @staticmethod
    def _draw(rng: np.random.Generator, choices: list[tuple[str, float]]) -> str:
        weights = np.array([w for _, w in choices], dtype=float)
        return choices[int(rng.choice(len(choices), p=weights / weights.sum()))][0]

    def _constant(self, rng: np.random.Generator) -> TreeNode:
        if self.pset.constants:
            return const(self.pset.constants[int(rng.integers(len(self.pset.constants)))])
        low, high = self.pset.const_range
        return const(round(float(rng.uniform(low, high)), 4))

    def random_leaf(self, rng: np.random.Generator) -> TreeNode:
        name = self._draw(rng, self._leaf_choices)
        return self._constant(rng) if name == "const" else leaf(name)

    def grow(
        self, rng: np.random.Generator, max_height: int, min_height: int = 0, depth: int = 0
    ) -> TreeNode:
        """A random tree: ops and leaves drawn by weight, ops forced above ``min_height``."""
        if depth >= max_height:
            return self.random_leaf(rng)
        choices = self._op_choices if depth < min_height else self._op_choices + self._leaf_choices
        name = self._draw(rng, choices)
        if name in LEAVES:
            return self._constant(rng) if name == "const" else leaf(name)
        arity = self.pset.ops[name].arity
        return op(name, *(self.grow(rng, max_height, min_height, depth + 1) for _ in range(arity)))

    def _valid(self, root: TreeNode) -> bool:
        return root.size() <= self.max_size and {"y", "yhat"} <= root.leaves()

    def _genome(self, root: TreeNode) -> TreeGenome:
        return TreeGenome(root=root, primitives=self.pset.name)

    def random(self, rng: np.random.Generator) -> TreeGenome:
        """A random tree holding both y and yhat, within the height and size limits."""
        for _ in range(self.max_tries):
            root = self.grow(rng, self.init_max_height, self.init_min_height)
            if self._valid(root):
                return self._genome(root)
        raise GenomeError(f"no random tree with y and yhat in {self.max_tries} tries; raise init_max_height")

    # ----------------------------------------------------------------- operators
    @staticmethod
    def _random_path(rng: np.random.Generator, root: TreeNode) -> Path:
        paths = [path for path, _ in root.walk()]
        return paths[int(rng.integers(len(paths)))]

    def crossover(
        self, a: TreeGenome, b: TreeGenome, rng: np.random.Generator
    ) -> tuple[TreeGenome, TreeGenome]:
        """Subtree crossover: swap a random subtree of ``a`` with one of ``b``; a child over the
        size limit is replaced by its parent."""
        pa, pb = self._random_path(rng, a.root), self._random_path(rng, b.root)
        ca = a.root.replace_at(pa, b.root.get(pb))
        cb = b.root.replace_at(pb, a.root.get(pa))
        child_a = self._genome(ca) if ca.size() <= self.max_size else self._genome(a.root)
        child_b = self._genome(cb) if cb.size() <= self.max_size else self._genome(b.root)
        return child_a, child_b

    def subtree_mutation(self, g: TreeGenome, rng: np.random.Generator) -> TreeGenome:
        """A random node and its children replaced by a random subtree."""
        path = self._random_path(rng, g.root)
        new = g.root.replace_at(path, self.grow(rng, self.mutation_max_height))
        return self._genome(new) if new.size() <= self.max_size else self._genome(g.root)

    def one_point_mutation(self, g: TreeGenome, rng: np.random.Generator) -> TreeGenome:
        """A random node replaced by a random primitive of the same arity (children kept)."""
        path = self._random_path(rng, g.root)
        node = g.root.get(path)
        if node.is_leaf:
            new = self.random_leaf(rng)
        else:
            arity = self.pset.ops[node.op].arity
            same = [(n, w) for n, w in self._op_choices if self.pset.ops[n].arity == arity and n != node.op]
            new = replace(node, op=self._draw(rng, same)) if same else node
        return self._genome(g.root.replace_at(path, new))

    def glo_mutation(self, g: TreeGenome, rng: np.random.Generator) -> TreeGenome:
        """GLO's mutations, applied bottom-up (deeper nodes first), each node independently."""

        def mutate(node: TreeNode) -> TreeNode:
            if node.args:
                node = replace(node, args=tuple(mutate(a) for a in node.args))
            if node.op == "const" and float(node.value).is_integer() and rng.random() < self.p_integer:
                node = replace(node, value=node.value + (1 if rng.random() < 0.5 else -1))
            if rng.random() < self.p_replace:
                if node.is_leaf:
                    node = replace(self.random_leaf(rng), coef=node.coef)
                else:
                    arity = self.pset.ops[node.op].arity
                    same = [(n, w) for n, w in self._op_choices if self.pset.ops[n].arity == arity]
                    node = replace(node, op=self._draw(rng, same))
            if not node.is_leaf and rng.random() < self.p_to_leaf:
                node = self.random_leaf(rng)
            elif node.is_leaf and rng.random() < self.p_to_subtree:
                node = self.grow(rng, 1, min_height=1)
            return node

        new = mutate(g.root)
        return self._genome(new) if new.size() <= self.max_size else self._genome(g.root)

    def mutate(self, genome: TreeGenome, rng: np.random.Generator) -> TreeGenome:
        """One mutation that changes the tree: GLO's bottom-up pass, or subtree / one-point
        mutation in proportion to their rates."""
        for _ in range(self.max_tries):
            if self.mutation == "glo":
                child = self.glo_mutation(genome, rng)
            elif rng.random() < self.p_subtree / (self.p_subtree + self.p_one_point):
                child = self.subtree_mutation(genome, rng)
            else:
                child = self.one_point_mutation(genome, rng)
            if child.root != genome.root:
                return child
        return child
