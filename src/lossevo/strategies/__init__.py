"""Search strategies behind one ask/tell interface."""

from lossevo.strategies.base import Proposal, Strategy
from lossevo.strategies.genetic_programming import GeneticProgramming
from lossevo.strategies.glo import GLO
from lossevo.strategies.random_search import RandomSearch
from lossevo.strategies.regularized_evolution import RegularizedEvolution
from lossevo.strategies.taylorglo import TaylorGLO

__all__ = [
    "GLO",
    "GeneticProgramming",
    "Proposal",
    "RandomSearch",
    "RegularizedEvolution",
    "Strategy",
    "TaylorGLO",
]
