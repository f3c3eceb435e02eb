"""One procedure's scaling law: select its points, take their frontier, fit, hold out, bootstrap.

The pipeline every analysis runs on each procedure, as one call with keyword arguments, so
the command line, the mini study and notebooks fit a procedure the same way:

    proc = fit_procedure(points, where=dict(arch='clip'), heldout_threshold=1e10, bootstrap=1000)
    proc.fit.params, proc.held_out.relative_error, proc.boot.prediction_interval([1e12])
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from fitting import bootstrap as bootstrap_lib
from fitting import checks, filters, forms, replicates, report, solver
from fitting import heldout as heldout_lib

# Bootstrap over runs before the frontier is taken (the paper's), or over the frontier points.
RESAMPLES = ('runs', 'points')


def _cast(points: pd.DataFrame, column: str, value):
  """`value` in the column's own type: a string from a command line selects numbers too."""
  kind = points[column].dtype.kind if column in points.columns else 'O'
  return float(value) if kind in 'fiu' else value


def _seed_noise(runs: replicates.Replicates, run_noise: float) -> str:
  if not run_noise:
    return runs.seed_noise()
  measured = f'{100 * run_noise:.1f}% per run, as measured on replicates'
  if runs.present:
    return f'{runs.seed_noise()} where replicated; elsewhere {measured}'
  return f'included: {measured}'


def select_where(points: pd.DataFrame, where: dict) -> pd.DataFrame:
  """Rows whose columns equal `where`'s values ({'arch': 'clip', 'params': '1e7'})."""
  for column, value in where.items():
    points = filters.select(points, **{column: _cast(points, column, value)})
  return points


@dataclasses.dataclass(frozen=True)
class ProcedureFit:
  """One procedure's points, frontier, law and, if asked for, held-out check and bootstrap."""

  label: str
  points: pd.DataFrame  # every eligible point of the procedure
  frontier: pd.DataFrame
  fit: solver.Fit  # on the frontier up to the held-out threshold, if there is one
  held_out: heldout_lib.HeldOut | None
  boot: bootstrap_lib.Bootstrap | None

  @property
  def seed_noise(self) -> str | None:
    """Whether the bootstrap intervals include seed noise, in words; None without them."""
    return None if self.boot is None else self.boot.seed_noise

  def warnings(self) -> list[str]:
    """What a reader must know before trusting the numbers (`fitting.checks`)."""
    return checks.fit_warnings(self.fit, self.boot)

  def summary(self, level: float = 0.95) -> dict:
    """JSON-ready: the law, its frontier, held-out predictions, bootstrap intervals, warnings."""
    frontier = (self.frontier['x'], self.frontier['error'])
    out = report.fit_summary(self.fit, frontier, self.held_out, self.boot, level)
    out['label'] = self.label
    if self.boot is not None:
      out['seed_noise'] = self.seed_noise
    out['warnings'] = self.warnings()
    return out

  def curve(self):
    """This procedure as one curve of `fitting.plot.figure`."""
    # Imported here: `fitting.plot` switches matplotlib to a file backend, which would stop
    # a notebook that only fits from showing its own figures.
    from fitting import plot  # pylint: disable=g-import-not-at-top

    return plot.Curve(
        self.label,
        (self.points['x'].to_numpy(), self.points['error'].to_numpy()),
        (self.frontier['x'].to_numpy(), self.frontier['error'].to_numpy()),
        self.fit,
        self.boot,
        self.held_out,
    )


def fit_procedure(
    points: pd.DataFrame,
    *,
    where: dict | None = None,
    frontier: str = 'pareto_bin',
    form: str = 'saturation_both',
    loss: str = 'linear',
    heldout_threshold: float | None = None,
    bootstrap: int = 0,
    resample: str = 'runs',
    seed: int = 0,
    run_noise: float = 0.0,
) -> ProcedureFit:
  """Fit `form` to the frontier of the eligible `points` that match `where`.

  With `heldout_threshold`, the law is fitted on frontier points up to it and predicts those
  above. `bootstrap` replicates resample either runs (before the frontier, as the paper does)
  or the fitted frontier points; either way only data up to the threshold. Runs that are
  seed replicates of one configuration (a `seed` column) are drawn as such, so that the
  intervals include seed noise; `ProcedureFit.seed_noise` says whether they do. `run_noise`
  (a relative standard deviation of a run's errors, measured on replicates elsewhere) adds
  seed noise to the runs trained once (`bootstrap.resample_runs`).
  """
  if resample not in RESAMPLES:
    raise ValueError(f'unknown resample {resample!r}; choose one of {RESAMPLES}')
  if bootstrap < 0:
    raise ValueError(f'bootstrap must be >= 0 replicates, got {bootstrap}')
  where = where or {}
  label = ', '.join(f'{v}' for v in where.values()) or 'all'
  points = select_where(points, where)
  front = filters.frontier_points(points, frontier)
  n_params = forms.get(form).n_params
  if len(front) < n_params:
    raise ValueError(
        f'{label}: only {len(front)} frontier points for the {n_params} parameters of {form}'
    )
  x, y = front['x'].to_numpy(), front['error'].to_numpy()
  held_out = None
  if heldout_threshold is None:
    fit = solver.fit(form, x, y, loss=loss)
    limit = np.inf
  else:
    held_out = heldout_lib.held_out(x, y, heldout_threshold, form, loss=loss)
    fit = held_out.fit
    limit = heldout_threshold
  boot = None
  if bootstrap and resample == 'points':
    boot = bootstrap_lib.resample_points(fit, x[x <= limit], y[x <= limit], bootstrap, seed)
  elif bootstrap:
    fitted = points[points['x'].to_numpy() <= limit]
    runs = replicates.find(fitted)
    boot = bootstrap_lib.resample_runs(
        fit,
        fitted['x'],
        fitted['error'],
        runs.run,
        bootstrap,
        seed,
        filters.FRONTIERS[frontier],
        configs=runs.config if runs.present else None,
        seed_noise=_seed_noise(runs, run_noise),
        run_noise=run_noise,
    )
  return ProcedureFit(label, points, front, fit, held_out, boot)
