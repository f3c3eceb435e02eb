"""What a reader must be told before trusting a fit: parameters on the solver's bounds,
frontiers too small for the form, and bootstrap replicates that the data do not determine.

Each check returns sentences for the report and the JSON; none of them stops a fit, since a
doubtful number that says so is more use than none.
"""

from __future__ import annotations

import numpy as np

from fitting import forms as forms_lib
from fitting import solver

# A law checked by its fit needs points beyond its parameters: with fewer than this many per
# parameter, a fit can bend through every point and the bootstrap mostly resamples noise.
POINTS_PER_PARAM = 2
# A bootstrap summary is worth a warning when at least this share of replicates misbehaves.
REPLICATE_SHARE = 0.05

# What the solver moves for each parameter (see `fitting.forms`): ln of the non-negative ones,
# ln(-c) for a non-positive exponent; the box is ±THETA_LIMIT on these.
COORDINATES = {
    'saturation_both': ('ln a', 'ln b', 'ln(-c)', 'ln d'),
    'saturation': ('ln a', 'ln b', 'ln(-c)'),
    'power_law': ('ln a', 'c'),
}


def _coordinates(form: forms_lib.Form) -> tuple[str, ...]:
  return COORDINATES.get(form.name, tuple(f'theta[{i}]' for i in range(form.n_params)))


def _on_bound(thetas: np.ndarray) -> np.ndarray:
  return np.abs(thetas) >= forms_lib.THETA_LIMIT * (1 - 1e-9)


def bound_hits(fit: solver.Fit) -> list[str]:
  """One sentence per parameter that sits on the solver's box (e.g. ln b = -60)."""
  out = []
  natural = fit.form.to_natural(np.asarray(fit.theta))
  for i in np.flatnonzero(_on_bound(np.asarray(fit.theta))):
    name, coordinate = fit.form.param_names[i], _coordinates(fit.form)[i]
    out.append(
        f'{name} is on the solver bound ({coordinate} = {fit.theta[i]:+.0f}, so {name} = '
        f'{natural[i]:.3g}): the data do not pin it down, and the law and its intervals '
        'hold only with it at that bound'
    )
  return out


def frontier_size(n_points: int, n_params: int, what: str) -> str | None:
  """A sentence when n_points are too few to test a law of n_params, else None."""
  if n_points >= POINTS_PER_PARAM * n_params:
    return None
  return (
      f'only {n_points} frontier points for the {n_params} parameters of {what}: the fit can '
      f'follow the points rather than test the law, and its intervals are not reliable '
      f'(fewer than {POINTS_PER_PARAM * n_params} points)'
  )


def bootstrap_checks(boot) -> list[str]:
  """Replicates fitted on fewer distinct points than parameters, or on the solver's box."""
  out = []
  form, n = boot.fit.form, len(boot.thetas)
  if boot.n_distinct is not None:
    share = float(np.mean(boot.n_distinct < form.n_params))
    if share >= REPLICATE_SHARE:
      out.append(
          f'{share:.0%} of bootstrap replicates had fewer distinct points than the '
          f'{form.n_params} parameters of {form.name}: their laws are not determined by data'
      )
  shares = np.mean(_on_bound(boot.thetas), axis=0)
  for coordinate, share in zip(_coordinates(form), shares):
    if share >= REPLICATE_SHARE:
      out.append(f'{share:.0%} of {n} bootstrap replicates put {coordinate} on the solver bound')
  return out


def fit_warnings(fit: solver.Fit, boot=None) -> list[str]:
  """Every warning about one fit and, if given, its bootstrap."""
  out = bound_hits(fit)
  small = frontier_size(fit.n_points, fit.form.n_params, fit.form.name)
  out += [small] if small else []
  out += bootstrap_checks(boot) if boot is not None else []
  return out
