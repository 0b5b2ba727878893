"""Genomes: the individuals of the search spaces, and how to read them from files."""

from lossevo.genome.base import Genome, SearchSpace, genome_from_dict, register_space
from lossevo.genome.files import load_genome_file, save_genome_file
from lossevo.genome.graph import GraphGenome, GraphSpace, Node, graph
from lossevo.genome.taylor import TaylorGenome, TaylorSpace
from lossevo.genome.tree import TreeGenome, TreeNode, TreeSpace

__all__ = [
    "Genome",
    "GraphGenome",
    "GraphSpace",
    "Node",
    "SearchSpace",
    "TaylorGenome",
    "TaylorSpace",
    "TreeGenome",
    "TreeNode",
    "TreeSpace",
    "genome_from_dict",
    "graph",
    "load_genome_file",
    "register_space",
    "save_genome_file",
]
