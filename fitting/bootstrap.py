"""Seeded bootstrap of a fit, every replicate solved at once with `jax.vmap`.

Two resampling schemes: frontier points with replacement (as multinomial weights on the
fitted points), and runs with replacement before the frontier is taken (each replicate then
has its own frontier, padded to a common length with zero weights). Where the runs include
seed replicates of one configuration, the configurations are drawn, then each one's seeds, so
the intervals include seed noise (`fitting.replicates`). Replicates are close to
the original data, so each one starts from the original optimum plus a strided subset of
the form's grid, in case its optimum moved to another basin; this is what makes 1,000
replicates cost about as much as a few full fits.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import numpy as np

from fitting import executables
from fitting import frontier as frontier_lib
from fitting import solver

GRID_STARTS = 15


@functools.partial(jax.jit, static_argnames='form')
def _predict_grid(form, thetas, x):
  return jax.vmap(form.predict, in_axes=(0, None))(thetas, x)


@dataclasses.dataclass(frozen=True)
class Bootstrap:
  """Replicate parameters (theta [R, P]) of one fit, with percentile summaries."""

  fit: solver.Fit
  thetas: np.ndarray
  seed: int
  # Distinct data points each replicate was fitted on [R]: one below the form's parameter
  # count leaves that replicate's law undetermined.
  n_distinct: np.ndarray | None = None
  resampled: str = 'points'  # 'points' (the frontier's) or 'runs'
  seed_noise: str = 'excluded: frontier points resampled, not runs'

  def natural(self) -> np.ndarray:
    """Natural parameters [R, P] in the form's order (a, b, c, d, ...)."""
    return np.stack([self.fit.form.to_natural(t) for t in self.thetas])

  def param_intervals(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
    lo, hi = _percentiles(self.natural(), level)
    out = {name: (float(l), float(h)) for name, l, h in zip(self.fit.form.param_names, lo, hi)}
    if 'b' in out:  # ln b straight from theta: b's percentiles can round to 0 near e^-60
      lo, hi = _percentiles(self.thetas[:, 1:2], level)
      out['ln_b'] = (float(lo[0]), float(hi[0]))
    return out

  def predict(self, x) -> np.ndarray:
    """Predictions [R, len(x)] of every replicate."""
    x = np.atleast_1d(np.asarray(x, np.float64))
    # Padded to a bucket of lengths: one compiled program serves every x of similar length.
    padded = np.pad(x, (0, solver.bucket(len(x)) - len(x)), constant_values=1.0)
    with jax.enable_x64(True):
      thetas = np.asarray(self.thetas, np.float64)
      out = executables.call('predict_grid', _predict_grid, self.fit.form, thetas, padded)
      return np.asarray(out)[:, : len(x)]

  def prediction_interval(self, x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile band of the prediction at each x: a `level` interval, labelled as such."""
    return _percentiles(self.predict(x), level)

  def sigma_band(self, x, k: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The fit ± k bootstrap standard deviations, and the coverage that band would have.

    The paper draws ±0.74σ and calls it 95%; for a normal spread ±0.74σ covers only 54%
    (2Φ(k) - 1), and that is the number returned with the band, to be put on its label.
    """
    center = self.fit.predict(x)
    predictions = self.predict(x)
    spread = np.nanstd(np.where(np.isfinite(predictions), predictions, np.nan), axis=0)
    return center - k * spread, center + k * spread, float(math.erf(k / math.sqrt(2)))


def _percentiles(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
  if not 0 < level < 1:
    raise ValueError(f'level must be in (0, 1), got {level}')
  tail = 50 * (1 - level)
  values = np.where(np.isfinite(values), values, np.nan)
  return np.nanpercentile(values, tail, axis=0), np.nanpercentile(values, 100 - tail, axis=0)


def _solve(fit: solver.Fit, x, y, w, grid_starts: int, width: int) -> np.ndarray:
  if fit.loss == 'log' and fit.form.log_lstsq is not None:  # exact, as `solver.fit` takes it
    return fit.form.log_lstsq(np.log(x), y, w)
  x, y, w = solver.pad(x, y, w, width)
  grid = fit.form.from_natural(fit.form.start_grid())
  stride = max(1, len(grid) // grid_starts)
  starts = np.concatenate([fit.theta[None], grid[::stride][:grid_starts]])
  with jax.enable_x64(True):
    thetas, _ = executables.call(
        'replicates', solver.solve_replicates, fit.form, starts, np.log(x), y, w, loss=fit.loss
    )
    return np.asarray(thetas)


def resample_points(
    fit: solver.Fit,
    x,
    y,
    n: int = 1000,
    seed: int = 0,
    grid_starts: int = GRID_STARTS,
    width: int = 0,
) -> Bootstrap:
  """Bootstrap over the fitted points themselves (the frontier, held fixed).

  `width` pads every replicate to at least that many points (`solver.pad`).
  """
  x, y = solver.check_data(fit.form, x, y)
  rng = np.random.default_rng(seed)
  counts = rng.multinomial(len(x), np.full(len(x), 1 / len(x)), size=n).astype(np.float64)
  xs, ys = np.broadcast_to(x, counts.shape), np.broadcast_to(y, counts.shape)
  thetas = _solve(fit, xs, ys, counts, grid_starts, width)
  return Bootstrap(fit, thetas, seed, n_distinct=np.sum(counts > 0, axis=1))


def resample_runs(
    fit: solver.Fit,
    x,
    y,
    run_ids,
    n: int = 1000,
    seed: int = 0,
    frontier: Callable[[np.ndarray, np.ndarray], np.ndarray] = frontier_lib.pareto_bin,
    grid_starts: int = GRID_STARTS,
    configs=None,
    seed_noise: str = 'excluded: one seed per run',
    run_noise: float = 0.0,
    width: int = 0,
) -> Bootstrap:
  """Bootstrap over runs: draw runs with replacement, take each replicate's own frontier.

  x, y and run_ids describe every eligible point (all checkpoints that passed the filters),
  not just the frontier; a run drawn twice contributes its points twice, which cannot change
  a frontier, so each replicate's frontier points carry weight 1.

  `configs` (one per point) marks runs that are seed replicates of one configuration: then
  configurations are drawn with replacement, and for each draw its runs with replacement,
  so a replicate sees the seed-to-seed spread as well as which configurations were run.
  `seed_noise` says, for reports, whether the runs hold that spread.

  `run_noise` carries a seed noise measured elsewhere (e.g. on replicates of the cheapest
  runs) to runs trained with one seed: each replicate multiplies such a run's errors by
  exp(run_noise · z), one standard normal z per run, since a seed moves a whole run, not its
  checkpoints one by one.

  `width` pads every replicate's frontier to at least that many points (`solver.pad`).
  """
  if run_noise < 0:
    raise ValueError(f'run_noise must be >= 0 (a relative standard deviation), got {run_noise}')
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  run_ids = np.asarray(run_ids)
  runs, first_point, run_of_point = np.unique(run_ids, return_index=True, return_inverse=True)
  rng = np.random.default_rng(seed)
  single = np.ones(len(runs), bool)  # runs whose configuration has no other seed
  if configs is None:
    draw = lambda: rng.integers(0, len(runs), len(runs))
  else:
    _, config_of_run = np.unique(np.asarray(configs)[first_point], return_inverse=True)
    members = [np.flatnonzero(config_of_run == c) for c in range(config_of_run.max() + 1)]
    single = np.array([len(members[c]) == 1 for c in config_of_run])

    def draw():
      picked = [members[c] for c in rng.integers(0, len(members), len(members))]
      return np.concatenate([m[rng.integers(0, len(m), len(m))] for m in picked])

  fronts = []  # (point indices, their errors) of each replicate's frontier
  for _ in range(n):
    drawn = np.unique(draw())
    y_drawn = y
    if run_noise:
      y_drawn = y * np.exp(run_noise * rng.standard_normal(len(runs)) * single)[run_of_point]
    idx = np.flatnonzero(np.isin(run_of_point, drawn))
    front = idx[frontier(x[idx], y_drawn[idx])]
    fronts.append((front, y_drawn[front]))
  longest = max(len(f) for f, _ in fronts)
  xs = np.full((n, longest), x[0])
  ys = np.full((n, longest), y[0])
  ws = np.zeros((n, longest))
  for i, (f, errors) in enumerate(fronts):
    xs[i, : len(f)], ys[i, : len(f)], ws[i, : len(f)] = x[f], errors, 1.0
  return Bootstrap(
      fit,
      _solve(fit, xs, ys, ws, grid_starts, width),
      seed,
      n_distinct=np.array([len(f) for f, _ in fronts]),
      resampled='runs',
      seed_noise=seed_noise,
  )
