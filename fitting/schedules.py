"""Constant-LR against cosine: do the two give the same comparison?

The paper's claim is that constant-LR runs (every checkpoint after warmup a point) rank
procedures as cosine runs (final checkpoints only) do, at a fraction of the compute. Here
A and B are fitted separately on each schedule's points, and the check reports whether the
winner at each target compute and the crossover agree.
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


def _result(points, by, a, b, at, form, loss, frontier) -> ScheduleResult:
  fits = {}
  for name in (a, b):
    front = filters.frontier_points(filters.select(points, **{by: name}), frontier)
    fits[name] = solver.fit(form, front['x'], front['error'], loss=loss)
  errors = {name: fit.predict(at) for name, fit in fits.items()}
  winners = {float(x): a if ea < eb else b for x, ea, eb in zip(at, errors[a], errors[b])}
  return ScheduleResult(compare.crossover(fits[a], fits[b]), winners)


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
  c1, c2 = const_result.crossover, cosine_result.crossover
  if c1 is None or c2 is None:
    crossover_agrees = c1 is None and c2 is None
  else:
    crossover_agrees = abs(np.log10(c1 / c2)) <= decades
  return Agreement(
      constant=const_result,
      cosine=cosine_result,
      ranking_agrees=const_result.winners == cosine_result.winners,
      crossover_agrees=bool(crossover_agrees),
  )
