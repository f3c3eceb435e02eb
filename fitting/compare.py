"""Comparing two procedures: where their laws cross, and how sure the bootstrap is.

A crossover is a compute where the sign of E_A(C) - E_B(C) changes. It is found on a dense
log-spaced grid and refined by bisection, for the point fits and for every bootstrap
replicate pair at once (replicate i of A with replicate i of B; their seeds should differ).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fitting import bootstrap as bootstrap_lib
from fitting import solver

SEARCH_RANGE = (1e6, 1e16)
GRID_POINTS = 2001
BISECTIONS = 60


def _first_crossings(on_grid, at_each, lo: float, hi: float) -> np.ndarray:
  """First crossover [R] in [lo, hi] of R curve pairs (NaN where they do not cross).

  on_grid maps x [G] to E_A - E_B of every pair, [R, G]; at_each maps x [R] to pair i's
  E_A - E_B at x_i, [R].
  """
  grid = np.geomspace(lo, hi, GRID_POINTS)
  sign = np.sign(on_grid(grid))
  change = sign[:, 1:] != sign[:, :-1]
  has = change.any(axis=1)
  first = np.argmax(change, axis=1)
  left, right = np.log(grid[first]), np.log(grid[first + 1])
  left_sign = sign[np.arange(len(sign)), first]
  for _ in range(BISECTIONS):
    mid = 0.5 * (left + right)
    same = np.sign(at_each(np.exp(mid))) == left_sign
    left, right = np.where(same, mid, left), np.where(same, right, mid)
  return np.where(has, np.exp(0.5 * (left + right)), np.nan)


def crossover(fit_a: solver.Fit, fit_b: solver.Fit, search=SEARCH_RANGE) -> float | None:
  """The first compute in `search` where the two fitted laws cross, or None."""
  diff = lambda x: fit_a.predict(x) - fit_b.predict(x)
  c = _first_crossings(lambda x: diff(x)[None], diff, *search)[0]
  return None if np.isnan(c) else float(c)


@dataclasses.dataclass(frozen=True)
class CrossoverInterval:
  """What the bootstrap says about a crossover, beside what the point fits say.

  `low` and `high` bound the crossovers of the replicate pairs that cross at all, so they
  are an interval only given a crossing; `share_crossing` is how many do. The point fits can
  cross where few replicates do (a near-tangency the resampling moves), so `note` says when
  the point lies outside that interval, or when most replicates do not cross.
  """

  point: float | None  # from the point fits
  low: float  # percentile interval over the replicates that cross (NaN if none do)
  high: float
  share_crossing: float  # share of replicate pairs that cross at all within the range
  level: float
  median: float = np.nan  # of the replicates that cross
  # Share of the crossing replicates that cross below the point (NaN without both).
  share_below_point: float = np.nan
  search: tuple[float, float] = SEARCH_RANGE

  @property
  def note(self) -> str | None:
    """In words, where the bootstrap and the point fits disagree; None where they do not."""
    lo, hi = self.search
    if self.share_crossing == 0:
      where = f'no bootstrap replicate crosses in {lo:.2g}..{hi:.2g}'
      return where if self.point is None else f'{where}; the point fits cross at {self.point:.2g}'
    crossing = f'{self.share_crossing:.0%} of replicates cross, {100 * self.level:.0f}% of those'
    crossing += f' between {self.low:.2g} and {self.high:.2g}'
    if self.point is None:
      return f'the point fits do not cross in {lo:.2g}..{hi:.2g}; {crossing}'
    notes = []
    if not self.low <= self.point <= self.high:
      notes.append(
          f'the point fits cross at {self.point:.2g}, outside the interval of the replicates '
          f'that cross ({self.share_below_point:.0%} of them cross below it): the bootstrap '
          'does not support the point estimate'
      )
    if self.share_crossing < self.level:
      notes.append(f'only {crossing}; the interval holds given a crossing')
    return '; '.join(notes) or None


def crossover_interval(
    boot_a: bootstrap_lib.Bootstrap,
    boot_b: bootstrap_lib.Bootstrap,
    level: float = 0.95,
    search=SEARCH_RANGE,
) -> CrossoverInterval:
  n = min(len(boot_a.thetas), len(boot_b.thetas))
  on_grid = lambda x: boot_a.predict(x)[:n] - boot_b.predict(x)[:n]
  at_each = lambda x: boot_a.predict_each(x, n) - boot_b.predict_each(x, n)
  crossings = _first_crossings(on_grid, at_each, *search)
  found = crossings[np.isfinite(crossings)]
  tail = 50 * (1 - level)
  low, high = np.percentile(found, [tail, 100 - tail]) if len(found) else (np.nan, np.nan)
  point = crossover(boot_a.fit, boot_b.fit, search)
  below = np.mean(found < point) if len(found) and point is not None else np.nan
  return CrossoverInterval(
      point=point,
      low=float(low),
      high=float(high),
      share_crossing=float(len(found) / n),
      level=level,
      median=float(np.median(found)) if len(found) else np.nan,
      share_below_point=float(below),
      search=(float(search[0]), float(search[1])),
  )


def probability_a_beats_b(
    boot_a: bootstrap_lib.Bootstrap, boot_b: bootstrap_lib.Bootstrap, x: float
) -> float:
  """Share of replicate pairs in which A's predicted error at compute x is below B's."""
  n = min(len(boot_a.thetas), len(boot_b.thetas))
  return float(np.mean(boot_a.predict([x])[:n, 0] < boot_b.predict([x])[:n, 0]))
