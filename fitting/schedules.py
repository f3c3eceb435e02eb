"""Constant-LR against cosine: do the two give the same comparison?

The paper's claim is that constant-LR runs (every checkpoint after warmup a point) rank
procedures as cosine runs (final checkpoints only) do, at a fraction of the compute. Here
A and B are fitted separately on each schedule's points, and the check reports whether the
winner at each target compute and the crossover agree. `agreement` fits both from one
table's points; `result` and `agree` take laws fitted elsewhere (`fitting.paper`, whose two
schedules follow different scripts' filters).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from fitting import compare, filters, solver


@dataclasses.dataclass(frozen=True)
class ScheduleResult:
  crossover: float | None
  winners: dict[float, str]  # target compute -> the procedure with the lower predicted error


@dataclasses.dataclass(frozen=True)
class Agreement:
  constant: ScheduleResult
  cosine: ScheduleResult
  ranking_agrees: bool  # same winner at every target compute
  # Both cross within `decades` of each other, or neither crosses in the search range.
  crossover_agrees: bool


def result(fit_a: solver.Fit, fit_b: solver.Fit, a: str, b: str, at) -> ScheduleResult:
  """Where the laws of A and B cross, and which one predicts the lower error at each `at`."""
  at = np.atleast_1d(np.asarray(at, np.float64))
  ea, eb = fit_a.predict(at), fit_b.predict(at)
  winners = {float(x): a if u < v else b for x, u, v in zip(at, ea, eb)}
  return ScheduleResult(compare.crossover(fit_a, fit_b), winners)


def _result(points, by, a, b, at, form, loss, frontier) -> ScheduleResult:
  fits = {}
  for name in (a, b):
    front = filters.frontier_points(filters.select(points, **{by: name}), frontier)
    fits[name] = solver.fit(form, front['x'], front['error'], loss=loss)
  return result(fits[a], fits[b], a, b, at)


def agree(constant: ScheduleResult, cosine: ScheduleResult, decades: float = 1.0) -> Agreement:
  """Whether the two schedules' results name the same winners and cross within `decades`."""
  c1, c2 = constant.crossover, cosine.crossover
  if c1 is None or c2 is None:
    crossover_agrees = c1 is None and c2 is None
  else:
    crossover_agrees = abs(np.log10(c1 / c2)) <= decades
  return Agreement(
      constant=constant,
      cosine=cosine,
      ranking_agrees=constant.winners == cosine.winners,
      crossover_agrees=bool(crossover_agrees),
  )


def agreement(
    points: pd.DataFrame,
    by: str,
    a: str,
    b: str,
    at,
    *,
    form: str = 'saturation_both',
    loss: str = 'linear',
    frontier: str = 'pareto_bin',
    cosine_frontier: str | None = None,
    decades: float = 1.0,
) -> Agreement:
  """Compare A and B (values of column `by`) on constant-LR and on cosine points."""
  at = np.atleast_1d(np.asarray(at, np.float64))
  constant = filters.is_constant(points)
  if constant.all() or not constant.any():
    raise ValueError('the schedule check needs both constant-LR and cosine points')
  const_result = _result(points[constant], by, a, b, at, form, loss, frontier)
  # `cosine_frontier='all'` when there are only a few cosine runs, one point each.
  cosine_result = _result(points[~constant], by, a, b, at, form, loss, cosine_frontier or frontier)
  return agree(const_result, cosine_result, decades)
