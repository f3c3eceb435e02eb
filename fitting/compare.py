"""Comparing two procedures: where their laws cross, and how sure the bootstrap is.

A crossover is a compute where the sign of E_A(C) - E_B(C) changes. It is found on a dense
log-spaced grid and refined by bisection, for the point fits and for every bootstrap
replicate pair at once (replicate i of A with replicate i of B; their seeds should differ).
Grid and bisection are one compiled program over all pairs: step by step from Python, the
sixty bisections of each comparison would each cost a dispatch per law.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from fitting import bootstrap as bootstrap_lib
from fitting import executables, solver

SEARCH_RANGE = (1e6, 1e16)
# The grid only brackets the first sign change, which bisection then pins to float64
# precision: 201 points over the ten decades tell apart crossings 0.05 decade apart (every
# interval of the benchmark's paper-sized tables is as with 2,001), at a tenth of the cost.
GRID_POINTS = 201
BISECTIONS = 60


@functools.partial(jax.jit, static_argnames=('form', 'other', 'grid_points', 'bisections'))
def _first_crossings_program(
    form, thetas, other_thetas, log_range, *, other, grid_points, bisections
):
  """First crossover [R] of E_form(thetas[i]) - E_other(other_thetas[i]) in the log range."""
  log_grid = jnp.linspace(log_range[0], log_range[1], grid_points)

  def diff(theta, other_theta, log_x):
    return form.value_and_jac(theta, log_x)[0] - other.value_and_jac(other_theta, log_x)[0]

  def first(theta, other_theta):
    sign = jnp.sign(diff(theta, other_theta, log_grid))
    change = sign[1:] != sign[:-1]
    i = jnp.argmax(change)
    left_sign = sign[i]

    def bisect(_, bounds):
      left, right = bounds
      mid = 0.5 * (left + right)
      same = jnp.sign(diff(theta, other_theta, mid[None])[0]) == left_sign
      return jnp.where(same, mid, left), jnp.where(same, right, mid)

    left, right = jax.lax.fori_loop(0, bisections, bisect, (log_grid[i], log_grid[i + 1]))
    return jnp.where(change.any(), jnp.exp(0.5 * (left + right)), jnp.nan)

  return jax.vmap(first)(thetas, other_thetas)


def _first_crossings(form_a, thetas_a, form_b, thetas_b, lo: float, hi: float) -> np.ndarray:
  """First crossover [R] in [lo, hi] of R curve pairs (NaN where they do not cross)."""
  with jax.enable_x64(True):
    as64 = lambda v: np.asarray(v, np.float64)
    log_range = np.log(np.array([lo, hi], np.float64))
    out = executables.call(
        'crossings',
        _first_crossings_program,
        form_a,
        as64(thetas_a),
        as64(thetas_b),
        log_range,
        other=form_b,
        grid_points=GRID_POINTS,
        bisections=BISECTIONS,
    )
    return np.asarray(out)


def crossover(fit_a: solver.Fit, fit_b: solver.Fit, search=SEARCH_RANGE) -> float | None:
  """The first compute in `search` where the two fitted laws cross, or None."""
  c = _first_crossings(fit_a.form, fit_a.theta[None], fit_b.form, fit_b.theta[None], *search)[0]
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
  form_a, form_b = boot_a.fit.form, boot_b.fit.form
  crossings = _first_crossings(form_a, boot_a.thetas[:n], form_b, boot_b.thetas[:n], *search)
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
