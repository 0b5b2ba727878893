"""Search strategies behind one ask/tell interface."""

from lossevo.strategies.base import Proposal, Strategy
from lossevo.strategies.random_search import RandomSearch
from lossevo.strategies.regularized_evolution import RegularizedEvolution
from lossevo.strategies.taylorglo import TaylorGLO

__all__ = ["Proposal", "RandomSearch", "RegularizedEvolution", "Strategy", "TaylorGLO"]
