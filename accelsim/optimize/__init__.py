"""Budget-constrained fleet optimisation: the MILP (:mod:`.milp`) and its builder from
plain data (:mod:`.problem`)."""

from accelsim.optimize.milp import MixProblem, solve
from accelsim.optimize.problem import build_problem

__all__ = ["MixProblem", "build_problem", "solve"]
