"""A multi-year purchase plan: which devices to buy in which quarter, as one MILP.

The scenario's ``plan`` block gives the horizon (quarters from a start year), the budget of
each year, how fast each workload's demand grows, and when and how fast each device can be
delivered (supply ramps, a device available from a date, an export rule ending deliveries).
Per-device throughput, TCO and power come from the fleet's one evaluation (``compare``'s
device table), so the plan prices devices as every other command does.

Variables: ``x[d, w, q]``, whole servers of device d for workload w delivered in quarter q,
``u[w, q]`` in [0, 1], the share of workload w's demand left unserved in quarter q, and
``o[d, w, q]`` >= 0, servers powered off in q (they keep maintenance and facility, save
their energy ``off_saving``, hold no power). On in q: every server delivered up to q less
those off (the horizon is shorter than a device's life, nothing is sold).

  minimise  sum_q disc(q) [capex of x(q) - residual of x(q) at the end + opex of installed(q)]
            + PENALTY x sum_{w,q} u[w, q] x (the annual TCO that demand would need)
            - sum_q disc(q) energy saved by o(q)
  subject to, every quarter q:
    capacity_w(on(q)) + u[w, q] demand_w(q) >= demand_w(q)          (each workload)
    units delivered of device d in q <= its deliveries that quarter     (supply ramp, bans)
    facility power of on(q) <= power cap, per region                    (the scenario's rules)
    facility power in region r <= built_r + builds of r started by q - B_r  (build time)
  and every year: capex of its deliveries <= its budget (pools in the scenario's proportions).

Rental offers (the scenario's ``rentals``, :mod:`accelsim.rental`) add ``z[k, w, q]``, whole
servers of offer k for workload w taken in quarter q for the offer's term (one quarter on
demand, ``commitment_months`` / 3 reserved): held servers add their throughput to demand,
count against the offer's ``max_units`` every quarter, draw no power of ours, and pay a
quarter of ``price x 8766`` for every quarter of the term (discounted, past the horizon too),
counted in each year's budget against the pool of the offer's region.

A chatbot routed by prompt size (``routing``) adds server columns per device and size bucket
b (:class:`accelsim.optimize.problem.BucketColumns`, as ``optimize``): its demand is one row
per bucket, ``sum_d c[d, b] on[d, b] + s_b (sum_d c[d] on[d] + rented + PD) + u s_b D >= s_b D``
(one unserved share u for all buckets). PD units (``disaggregation``,
:class:`accelsim.optimize.problem.PDColumn`) add whole lots ``v[k, q]`` delivered in q and
``pv[k, q]`` powered off, each lot taking servers of its two devices (deliveries, budgets,
power) and serving ``lot x rps`` of the whole mix.

disc(q) = (1 + r)^(-q/4) at the cost of capital; residual value is straight-line over
``finance.years``. A region with ``facility_built_mw`` owns its data centres: what is built
is sunk, a new build ``b[r, q]`` (facility W, continuous) costs
``facility_capex_usd_per_mw / PUE`` per facility MW when started, less its straight-line
residual over ``finance.facility_years``, and its devices' opex drops the annualised
facility capex that ``compare`` charges (no double count). Other regions rent by the kW.
Unserved demand costs ``PENALTY`` times what serving it would, so it is
used only when nothing else can serve it. The plan is solved to within :data:`MIP_GAP`
(0.1 %) of the optimum; the solver has a time limit, and a plan stopped by it is reported as
unproven with its gap.
"""

from typing import TYPE_CHECKING

from accelsim.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    **dict.fromkeys(["Deliveries", "PlanSpec", "quarter_index"], "accelsim.plan.spec"),
    **dict.fromkeys(["Build", "PlanProblem", "build"], "accelsim.plan.problem"),
    **dict.fromkeys(["MIP_GAP", "PENALTY", "TIME_LIMIT_S", "solve_plan"], "accelsim.plan.solve"),
})

if TYPE_CHECKING:
    from accelsim.plan.problem import Build, PlanProblem, build
    from accelsim.plan.solve import MIP_GAP, PENALTY, TIME_LIMIT_S, solve_plan
    from accelsim.plan.spec import Deliveries, PlanSpec, quarter_index

__all__ = ["MIP_GAP", "PENALTY", "TIME_LIMIT_S", "Build", "Deliveries", "PlanProblem",
           "PlanSpec", "build", "quarter_index", "solve_plan"]
