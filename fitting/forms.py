"""Scaling-law forms in a parameterisation that makes the bounds impossible to break.

The paper fits E(C) = a·(C + b)^c + d with a, b, d >= 0 and c <= 0 by scipy's bounded TRF on
the natural parameters. At C ~ 1e12 with b ~ e^18 the natural parameters span twenty orders of
magnitude, so here every form is written in unconstrained coordinates `theta` instead:
non-negative parameters are exp(theta) (so log b, the quantity that is actually O(10), is what
the solver moves), non-positive exponents are -exp(theta), and (C + b)^c is evaluated as
exp(c · logaddexp(log C, log b)), which neither overflows nor loses b against C.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable

import jax.numpy as jnp
import numpy as np

# A start at exactly 0 (the paper's grid has a = 0, b = 0, d = 0) has no logarithm; it is moved
# to this value, which is below anything that changes a prediction at C >= 1e6.
ZERO_FLOOR = 1e-8

# Box on theta that keeps every prediction finite (exp(60) ~ 1e26 already exceeds any
# compute axis); the solver projects onto it after each step.
THETA_LIMIT = 60.0


@dataclasses.dataclass(frozen=True)
class Form:
  """One functional form: its natural parameter names and the maps to and from theta."""

  name: str
  param_names: tuple[str, ...]
  # (prediction [N], d prediction / d theta [N, P]) at log x: written out by hand because
  # autodiff through logaddexp costs several times more transcendentals per point.
  value_and_jac: Callable[[jnp.ndarray, jnp.ndarray], tuple[jnp.ndarray, jnp.ndarray]]
  # The curve at a = 1 without offset, and where log a and log d sit in theta (d: None when
  # the form has no offset). a and d enter linearly, so the solver can set them exactly;
  # that matters because in log coordinates d -> 0 is a trap whose gradient vanishes.
  shape: Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]
  scale_index: int
  offset_index: int | None
  to_natural: Callable[[np.ndarray], np.ndarray]
  from_natural: Callable[[np.ndarray], np.ndarray]
  start_grid: Callable[[], np.ndarray]
  # For a form whose log is linear in theta: theta [..., P] minimising the log loss on
  # (log x, y, weights) [..., N], exactly, which spares the solver its starts and programs.
  log_lstsq: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None

  @property
  def n_params(self) -> int:
    return len(self.param_names)

  def predict(self, theta: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
    return self.value_and_jac(theta, jnp.log(x))[0]

  def natural(self, theta) -> dict[str, float]:
    return dict(zip(self.param_names, (float(v) for v in self.to_natural(np.asarray(theta)))))


def _log(v: np.ndarray) -> np.ndarray:
  return np.log(np.maximum(np.asarray(v, np.float64), ZERO_FLOOR))


def _grid(*axes) -> np.ndarray:
  return np.array(list(itertools.product(*axes)), np.float64)


def paper_grid() -> np.ndarray:
  """The paper's 3,200 starts (a, b, c, d) for saturation_both, in its loop order."""
  steps = np.arange(0, 100, 5, dtype=np.float64)
  return _grid(steps, steps, [-0.2, -0.15, -0.1, -0.05], [0.0, 5e-4])


def _log_c_plus_b(log_x, log_b):
  """log(C + b) and b / (C + b), sharing one exp: the solver's hot loop is transcendentals."""
  m = jnp.maximum(log_x, log_b)
  e = jnp.exp(-jnp.abs(log_x - log_b))
  share_b = jnp.where(log_b >= log_x, 1.0, e) / (1.0 + e)
  return m + jnp.log1p(e), share_b


def _saturation_shape(theta, log_x):
  return jnp.exp(-jnp.exp(theta[2]) * jnp.logaddexp(log_x, theta[1]))


def _saturation(theta, log_x):
  log_a, log_b, log_neg_c = theta[0], theta[1], theta[2]
  neg_c = jnp.exp(log_neg_c)
  log_cb, share_b = _log_c_plus_b(log_x, log_b)
  term = jnp.exp(log_a - neg_c * log_cb)
  return term, [term, -term * neg_c * share_b, -term * neg_c * log_cb]


def _saturation_both(theta, log_x):
  term, jac = _saturation(theta, log_x)
  d = jnp.exp(theta[3]) * jnp.ones_like(log_x)
  return term + d, jnp.stack(jac + [d], axis=-1)


def _saturation_only(theta, log_x):
  term, jac = _saturation(theta, log_x)
  return term, jnp.stack(jac, axis=-1)


def _power_law(theta, log_x):
  pred = jnp.exp(theta[0] + theta[1] * log_x)
  return pred, jnp.stack([pred, pred * log_x], axis=-1)


def _sat_to_natural(theta):
  out = np.exp(theta)
  out[2] = -out[2]
  return out


def _sat_from_natural(p):
  p = np.asarray(p, np.float64)
  return np.concatenate([_log(p[..., :2]), _log(-p[..., 2:3]), _log(p[..., 3:])], axis=-1)


SATURATION_BOTH = Form(
    name='saturation_both',
    param_names=('a', 'b', 'c', 'd'),
    value_and_jac=_saturation_both,
    shape=_saturation_shape,
    scale_index=0,
    offset_index=3,
    to_natural=_sat_to_natural,
    from_natural=_sat_from_natural,
    start_grid=paper_grid,
)

SATURATION = Form(
    name='saturation',
    param_names=('a', 'b', 'c'),
    value_and_jac=_saturation_only,
    shape=_saturation_shape,
    scale_index=0,
    offset_index=None,
    to_natural=_sat_to_natural,
    from_natural=_sat_from_natural,
    start_grid=lambda: paper_grid()[::2, :3],
)

POWER_LAW = Form(
    name='power_law',
    param_names=('a', 'c'),
    value_and_jac=_power_law,
    shape=lambda theta, log_x: jnp.exp(theta[1] * log_x),
    scale_index=0,
    offset_index=None,
    to_natural=lambda theta: np.array([np.exp(theta[0]), theta[1]]),
    from_natural=lambda p: np.stack([_log(np.asarray(p)[..., 0]), np.asarray(p)[..., 1]], -1),
    start_grid=lambda: _grid(np.arange(5, 100, 5, dtype=np.float64), [-0.3, -0.2, -0.1, -0.05]),
    log_lstsq=lambda log_x, y, w: loglog_lines(log_x, np.log(y), w),  # theta = (log a, c)
)

FORMS = {form.name: form for form in (SATURATION_BOTH, SATURATION, POWER_LAW)}


def get(name: str) -> Form:
  if name not in FORMS:
    raise ValueError(f'unknown form {name!r}; choose one of {sorted(FORMS)}')
  return FORMS[name]


def loglog_lines(log_x, log_y, weights) -> np.ndarray:
  """(intercept, slope) [..., 2] of the weighted least-squares lines log y = intercept + slope ·
  log x along the last axis (one per bootstrap replicate, say); NaN where the weight sits on
  fewer than two distinct x, through which no line is determined."""
  arrays = (np.asarray(v, np.float64) for v in (log_x, log_y, weights))
  log_x, log_y, w = np.broadcast_arrays(*arrays)
  mean = lambda v: (w * v).sum(-1, keepdims=True) / w.sum(-1, keepdims=True)
  mean_x, mean_y = mean(log_x), mean(log_y)
  weighted = w > 0
  lowest = np.min(np.where(weighted, log_x, np.inf), -1)
  spread = np.max(np.where(weighted, log_x, -np.inf), -1) > lowest
  dx = log_x - mean_x
  sxx = np.where(spread, (w * dx * dx).sum(-1), 1.0)
  slope = np.where(spread, (w * dx * (log_y - mean_y)).sum(-1) / sxx, np.nan)
  return np.stack([mean_y[..., 0] - slope * mean_x[..., 0], slope], axis=-1)


def loglog_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
  """Slope and intercept of log y = slope · log x + intercept, by ordinary least squares.

  This is the closed form the paper uses for compute-optimal samples (and model size) as a
  power law of compute; it needs no starts.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if np.any(x <= 0) or np.any(y <= 0):
    raise ValueError('a log-log line needs positive x and y')
  intercept, slope = loglog_lines(np.log(x), np.log(y), np.ones_like(x))
  return float(slope), float(intercept)
