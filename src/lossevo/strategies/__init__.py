"""Search strategies behind one ask/tell interface."""

from lossevo.strategies.base import Proposal, Strategy
from lossevo.strategies.regularized_evolution import RegularizedEvolution

__all__ = ["Proposal", "RegularizedEvolution", "Strategy"]
