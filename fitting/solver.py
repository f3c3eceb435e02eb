"""Multi-start Levenberg–Marquardt: every start of a grid solved at once with `jax.vmap`.

The saturation objective has many local minima (in the paper only 10–25% of its 3,200 starts
reach the best one), so all starts are run, each for a fixed number of damped Gauss–Newton
steps in the form's unconstrained coordinates, and the start with the lowest objective wins.
A fixed iteration count and no data-dependent control flow keep the result deterministic and
the whole batch one jitted program.

Two stages: all starts run in float32, where the CPU's vectorised exp/log are about four
times faster than float64's, then the best `POLISH_TOP` of them continue in float64 (scoped
with `jax.enable_x64`), so the optimum reported is as precise as scipy's.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from fitting import executables
from fitting import forms as forms_lib

LOSSES = ('linear', 'log', 'huber')
COARSE_ITER = 30
POLISH_ITER = 30
POLISH_TOP = 32
HUBER_DELTA = 1e-2
PREDICT_WIDTH = 512  # points: a figure's curve (`fitting.plot` draws 400)
_LAMBDA_RANGE = (1e-12, 1e12)


def _spd_solve(a, b):
  """Solve a x = b for a small symmetric positive-definite a by unrolled Cholesky.

  LAPACK's batched solve costs more per 4×4 system than the arithmetic itself; unrolled over
  the static size, the solve becomes a few fused element-wise ops across all starts.
  """
  n = b.shape[0]
  lower = [[None] * n for _ in range(n)]
  for i in range(n):
    for j in range(i + 1):
      s = a[i, j] - sum(lower[i][k] * lower[j][k] for k in range(j))
      lower[i][j] = jnp.sqrt(jnp.maximum(s, jnp.finfo(s.dtype).tiny)) if i == j else s / lower[j][j]
  z = []
  for i in range(n):
    z.append((b[i] - sum(lower[i][k] * z[k] for k in range(i))) / lower[i][i])
  x = [None] * n
  for i in reversed(range(n)):
    x[i] = (z[i] - sum(lower[k][i] * x[k] for k in range(i + 1, n))) / lower[i][i]
  return jnp.stack(x)


def _residuals_and_jac(form, loss, theta, log_x, y):
  pred, jac = form.value_and_jac(theta, log_x)
  if loss == 'log':
    return jnp.log(pred) - jnp.log(y), jac / pred[:, None]
  return pred - y, jac


def _objective(loss, r, w, huber_delta):
  """Weighted objective; w holds bootstrap counts (0 marks padding)."""
  if loss == 'huber':
    a = jnp.abs(r)
    rho = jnp.where(a <= huber_delta, r * r, 2 * huber_delta * a - huber_delta**2)
  else:
    rho = r * r
  return jnp.sum(w * rho) / jnp.sum(w)


def _best_linear(form, theta, log_x, y, w):
  """theta with a (and d) set to their least-squares optimum under a, d >= 0, given the rest.

  With g the curve at a = 1, a·g + d is linear in (a, d), so the optimum is the best of
  three closed forms: both free, d = 0, a = 0.
  """
  g = form.shape(theta, log_x)
  sw, sg, sgg = jnp.sum(w), jnp.sum(w * g), jnp.sum(w * g * g)
  sy, sgy = jnp.sum(w * y), jnp.sum(w * g * y)
  tiny = jnp.finfo(theta.dtype).tiny
  scale_only = jnp.maximum(sgy / jnp.maximum(sgg, tiny), 0.0)
  if form.offset_index is None:
    a, d = scale_only, None
  else:
    # Σw(a·g + d - y)² up to a constant, for the three candidates (a, d).
    cost = lambda a, d: a * a * sgg + d * d * sw + 2 * a * d * sg - 2 * a * sgy - 2 * d * sy
    det = sw * sgg - sg * sg
    a_free = (sw * sgy - sg * sy) / det
    d_free = (sgg * sy - sg * sgy) / det
    free_ok = (det > 1e-9 * sw * sgg) & (a_free >= 0) & (d_free >= 0)
    offset_only = jnp.maximum(sy / sw, 0.0)
    a_cands = jnp.stack([jnp.where(free_ok, a_free, 0.0), scale_only, 0.0 * sw])
    d_cands = jnp.stack([jnp.where(free_ok, d_free, 0.0), 0.0 * sw, offset_only])
    feasible = jnp.stack([free_ok, jnp.asarray(True), jnp.asarray(True)])
    costs = jnp.where(feasible, cost(a_cands, d_cands), jnp.inf)
    best = jnp.argmin(costs)
    a, d = a_cands[best], d_cands[best]
  log = lambda v: jnp.clip(jnp.log(jnp.maximum(v, tiny)), -forms_lib.THETA_LIMIT, None)
  theta = theta.at[form.scale_index].set(log(a))
  if d is not None:
    theta = theta.at[form.offset_index].set(log(d))
  return theta


def _solve_one(form, loss, n_iter, huber_delta, theta, log_x, y, w):
  tiny = jnp.finfo(theta.dtype).tiny

  # The loop carries the residuals and Jacobian of the accepted point, so each step
  # evaluates the model once (at the candidate).
  def evaluate(theta):
    r, jac = _residuals_and_jac(form, loss, theta, log_x, y)
    value = _objective(loss, r, w, huber_delta)
    return r, jac, jnp.where(jnp.isfinite(value), value, jnp.inf)

  def step(_, carry):
    theta, r, jac, value, lam = carry
    # Huber as iteratively reweighted least squares: each step is Gauss-Newton on the
    # quadratic that matches the Huber loss at the current residuals.
    irls = jnp.minimum(1.0, huber_delta / jnp.maximum(jnp.abs(r), tiny))
    sw = w * (irls if loss == 'huber' else 1.0)
    # Written as broadcast sums, not `jac.T @ jac`: vmapped over thousands of starts, tiny
    # matrix products become one small GEMM call each, element-wise sums fuse into one loop.
    weighted = sw[:, None] * jac
    hess = jnp.sum(weighted[:, :, None] * jac[:, None, :], axis=0)
    grad = jnp.sum(weighted * r[:, None], axis=0)
    # Marquardt's scaling makes the step invariant to each coordinate's scale; the floor
    # keeps a coordinate the data cannot see (e.g. log b far below log C) from a 0/0.
    diag = jnp.diag(hess)
    scale = jnp.maximum(diag, 1e-12 * jnp.max(diag) + tiny)
    delta = _spd_solve(hess + lam * jnp.diag(scale), -grad)
    candidate = jnp.clip(theta + delta, -forms_lib.THETA_LIMIT, forms_lib.THETA_LIMIT)
    if loss != 'log':  # in log space a and d are not linear parameters
      candidate = _best_linear(form, candidate, log_x, y, sw)
    new_r, new_jac, new_value = evaluate(candidate)
    better = new_value < value
    pick = lambda new, old: jnp.where(better, new, old)
    lam = jnp.clip(jnp.where(better, lam * 0.3, lam * 4.0), *_LAMBDA_RANGE)
    return pick(candidate, theta), pick(new_r, r), pick(new_jac, jac), pick(new_value, value), lam

  theta = jnp.clip(theta, -forms_lib.THETA_LIMIT, forms_lib.THETA_LIMIT)
  if loss != 'log':  # a start at a = 0 would otherwise see no gradient in b and c at all
    theta = _best_linear(form, theta, log_x, y, w)
  r, jac, value = evaluate(theta)
  # A start whose model is not finite on the data cannot take a step; zeroing its residuals
  # and Jacobian keeps the NaN out of the solve, and its infinite objective keeps it last.
  r, jac = jnp.nan_to_num(r), jnp.nan_to_num(jac)
  carry = (theta, r, jac, value, jnp.asarray(1e-3, theta.dtype))
  theta, _, _, value, _ = jax.lax.fori_loop(0, n_iter, step, carry)
  return theta, value


def _solve_starts(
    form, thetas, log_x, y, w, *, loss='linear', n_iter=POLISH_ITER, huber_delta=HUBER_DELTA
):
  """Final theta [S, P] and objective [S] of each start in `thetas` [S, P] on one data set."""
  solve = functools.partial(_solve_one, form, loss, n_iter, huber_delta)
  return jax.vmap(solve, in_axes=(0, None, None, None))(thetas, log_x, y, w)


_STATIC = ('form', 'loss', 'n_iter', 'huber_delta')
solve_starts = jax.jit(_solve_starts, static_argnames=_STATIC)
# The polish runs POLISH_TOP starts: milliseconds at any optimisation level, while LLVM's -O0
# halves its compile time, which is most of a cold command's wait.
_polish_starts = jax.jit(
    _solve_starts, static_argnames=_STATIC, compiler_options={'xla_backend_optimization_level': 0}
)


@functools.partial(jax.jit, static_argnames='form')
def _predict(form, theta, x):
  return form.predict(theta, x)


def predict(form: forms_lib.Form, theta, x) -> np.ndarray:
  """form's prediction at x (any shape of x, any number of points), in float64.

  One jitted program per bucket of lengths: op by op, a prediction compiles a dozen small
  kernels per new length of x, which a cold command would wait for every time. The smallest
  bucket holds a figure's curve (`PREDICT_WIDTH`), so that one program per form serves a
  whole command: a prediction costs microseconds at that length, a compile a tenth of a second.
  """
  x = np.asarray(x, np.float64)
  flat = x.reshape(-1)
  width = bucket(len(flat), smallest=PREDICT_WIDTH)
  padded = np.pad(flat, (0, width - len(flat)), constant_values=1.0)
  with jax.enable_x64(True):
    theta = np.asarray(theta, np.float64)
    out = np.asarray(executables.call('predict', _predict, form, theta, padded))
  return out[: len(flat)].reshape(x.shape)


@functools.partial(jax.jit, static_argnames=('form', 'loss', 'n_iter', 'huber_delta'))
def solve_replicates(
    form, thetas, log_x, y, w, *, loss='linear', n_iter=POLISH_ITER, huber_delta=HUBER_DELTA
):
  """Best theta [R, P] and objective [R] for R data sets (x, y, w of shape [R, N]) at once.

  Each replicate runs every start in `thetas` [S, P] and keeps its own best one.
  """

  def best(log_x, y, w):
    solve = functools.partial(_solve_one, form, loss, n_iter, huber_delta)
    theta, value = jax.vmap(solve, in_axes=(0, None, None, None))(thetas, log_x, y, w)
    i = jnp.argmin(jnp.where(jnp.isnan(value), jnp.inf, value))
    return theta[i], value[i]

  return jax.vmap(best)(log_x, y, w)


@dataclasses.dataclass(frozen=True)
class Fit:
  """The winning start of a multi-start fit, with what is needed to judge and reuse it."""

  form: forms_lib.Form
  loss: str
  theta: np.ndarray
  objective: float
  mse: float  # mean squared error of linear residuals on the (weighted) training points
  n_points: int
  # Share of starts whose objective is within 1e-6 (relative) of the best one: how
  # rugged the landscape was. Reported, not used.
  share_at_best: float

  @property
  def params(self) -> dict[str, float]:
    return self.form.natural(self.theta)

  def predict(self, x) -> np.ndarray:
    return predict(self.form, self.theta, x)


def bucket(n: int, smallest: int = 8) -> int:
  """The padded length for n points: a power of two, at least `smallest`."""
  return max(smallest, 1 << max(0, n - 1).bit_length())


def pad(x, y, w, width: int = 0):
  """Pad the last axis to its `bucket` with zero-weight copies of the last point.

  jit compiles once per shape; without this, every frontier length would cost a compile of
  seconds. Powers of two keep the shapes a researcher meets to a handful, so the persistent
  compilation cache (`fitting.cache`) serves nearly every fit, for at most twice the points.
  `width` pads to at least that many points: a caller that fits frontiers of many lengths
  passes the longest one's, so that all of them share one program.
  """
  x, y, w = (np.asarray(v, np.float64) for v in (x, y, w))
  extra = bucket(max(x.shape[-1], width)) - x.shape[-1]
  widths = [(0, 0)] * (x.ndim - 1) + [(0, extra)]
  return (
      np.pad(x, widths, mode='edge'),
      np.pad(y, widths, mode='edge'),
      np.pad(w, widths, constant_values=0.0),
  )


def check_data(form: forms_lib.Form, x, y) -> tuple[np.ndarray, np.ndarray]:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f'x and y must be 1-D and the same length, got {x.shape} and {y.shape}')
  if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
    raise ValueError('x and y must be finite (found NaN or inf)')
  if np.any(x <= 0):
    raise ValueError(f'compute must be positive; smallest x is {x.min()}')
  if np.any(y <= 0):
    raise ValueError(f'errors must be positive for these forms; smallest y is {y.min()}')
  if len(x) < form.n_params:
    raise ValueError(f'{form.name} has {form.n_params} parameters but only {len(x)} points to fit')
  return x, y


def fit(
    form: forms_lib.Form | str,
    x,
    y,
    *,
    loss: str = 'linear',
    starts: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    coarse_iter: int = COARSE_ITER,
    polish_iter: int = POLISH_ITER,
    huber_delta: float = HUBER_DELTA,
    width: int = 0,
) -> Fit:
  """Fit `form` to (x, y) from every start (natural parameters [S, P]; default: its grid).

  `width`: pad to at least this many points (`pad`), so fits of other lengths reuse one program.
  A form with an exact log-loss solution (`Form.log_lstsq`: the power law, a line in log-log
  space) fitted with loss='log' takes it, and no starts.
  """
  form = forms_lib.get(form) if isinstance(form, str) else form
  if loss not in LOSSES:
    raise ValueError(f'unknown loss {loss!r}; choose one of {LOSSES}')
  x, y = check_data(form, x, y)
  w = np.ones_like(x) if weights is None else np.asarray(weights, np.float64)
  if w.shape != x.shape or np.any(w < 0) or not np.any(w > 0):
    raise ValueError('weights must be non-negative, not all zero, one per point')
  if loss == 'log' and form.log_lstsq is not None:
    theta = form.log_lstsq(np.log(x), y, w)
    predicted = predict(form, theta, x)
    objective = float(np.sum(w * (np.log(predicted) - np.log(y)) ** 2) / np.sum(w))
    share_at_best = 1.0  # one solution, no starts
  else:
    starts = form.start_grid() if starts is None else np.asarray(starts, np.float64)
    options = dict(loss=loss, huber_delta=huber_delta, width=width)
    theta, objective, share_at_best = _multi_start(
        form, x, y, w, starts, coarse_iter, polish_iter, **options
    )
    predicted = predict(form, theta, x)
  return Fit(
      form=form,
      loss=loss,
      theta=theta,
      objective=objective,
      mse=float(np.sum(w * (predicted - y) ** 2) / np.sum(w)),
      n_points=len(x),
      share_at_best=share_at_best,
  )


def _multi_start(form, x, y, w, starts, coarse_iter, polish_iter, *, loss, huber_delta, width):
  """The best theta, its objective and the share of starts that reached it: every start run
  `coarse_iter` steps in float32, the best `POLISH_TOP` then `polish_iter` more in float64."""
  padded_x, padded_y, padded_w = pad(x, y, w, width)
  data = (np.log(padded_x), padded_y, padded_w)
  options = dict(loss=loss, huber_delta=huber_delta)
  with jax.enable_x64(True):
    # numpy arrays go to the programs as they are: `jnp.asarray` or a cast on the device would
    # each compile one more small program per shape.
    as32 = lambda v: np.asarray(v, np.float32)
    starts32 = as32(form.from_natural(starts))
    coarse, values = executables.call(
        'coarse', solve_starts, form, starts32, *map(as32, data), n_iter=coarse_iter, **options
    )
    coarse, values = np.asarray(coarse, np.float64), _nan_last(values)
    order = np.argsort(values, kind='stable')
    top = order[:POLISH_TOP]
    polished, polished_values = executables.call(
        'polish', _polish_starts, form, coarse[top], *data, n_iter=polish_iter, **options
    )
    polished, polished_values = np.asarray(polished), _nan_last(polished_values)
  theta = polished[np.argmin(polished_values)]  # the first of equal optima: deterministic
  # float32 objectives carry ~1e-6 relative noise, so "at the best" allows 1e-4.
  share_at_best = float(np.mean(values <= values[order[0]] * (1 + 1e-4)))
  return theta, float(polished_values.min()), share_at_best


def _nan_last(values) -> np.ndarray:
  values = np.asarray(values, np.float64)
  return np.where(np.isnan(values), np.inf, values)
