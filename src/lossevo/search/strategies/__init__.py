"""Search strategies behind one ask/tell interface."""

from lossevo.search.strategies.base import Proposal, Strategy
from lossevo.search.strategies.genetic_programming import GeneticProgramming
from lossevo.search.strategies.glo import GLO
from lossevo.search.strategies.random_search import RandomSearch
from lossevo.search.strategies.regularized_evolution import RegularizedEvolution
from lossevo.search.strategies.taylorglo import TaylorGLO

__all__ = [
    "GLO",
    "GeneticProgramming",
    "Proposal",
    "RandomSearch",
    "RegularizedEvolution",
    "Strategy",
    "TaylorGLO",
]
