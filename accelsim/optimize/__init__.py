"""Budget-constrained fleet optimisation: the MILP (:mod:`.milp`) and its builder from
plain data (:mod:`.problem`)."""

from accelsim.optimize.milp import MixProblem, solve
from accelsim.optimize.problem import BucketColumns, PDColumn, build_problem, pd_columns

__all__ = ["BucketColumns", "MixProblem", "PDColumn", "build_problem", "pd_columns", "solve"]
