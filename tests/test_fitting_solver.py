"""The multi-start solver: parameter recovery, bounds, losses, and scipy's TRF as an oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from fitting import forms, solver

TRUE = dict(a=70.0, b=np.exp(18.0), c=-0.25, d=0.15)
X = np.geomspace(1e6, 1e12, 25)


def law(x, a, b, c, d):
  return a * (x + b) ** c + d


@pytest.fixture(scope='module')
def noisy():
  rng = np.random.default_rng(0)
  return X, law(X, **TRUE) + rng.normal(0, 2e-3, X.shape)


@pytest.fixture(scope='module')
def noisy_fit(noisy):
  return solver.fit('saturation_both', *noisy)


def test_recovers_a_known_law_from_noisy_points(noisy, noisy_fit):
  p = noisy_fit.params
  assert p['c'] == pytest.approx(TRUE['c'], rel=0.15)
  assert p['d'] == pytest.approx(TRUE['d'], abs=0.02)
  assert np.log(p['b']) == pytest.approx(18.0, abs=1.0)
  # the fit is as good as the truth on its own data, and close to it beyond the data
  assert noisy_fit.mse <= np.mean((law(X, **TRUE) - noisy[1]) ** 2)
  far = np.array([1e13])
  assert noisy_fit.predict(far)[0] == pytest.approx(law(far, **TRUE)[0], abs=0.01)


def test_natural_parameters_respect_the_bounds(noisy_fit):
  p = noisy_fit.params
  assert p['a'] >= 0 and p['b'] >= 0 and p['c'] <= 0 and p['d'] >= 0
  assert noisy_fit.n_points == len(X)
  assert 0 < noisy_fit.share_at_best <= 1


def test_deterministic(noisy, noisy_fit):
  np.testing.assert_array_equal(solver.fit('saturation_both', *noisy).theta, noisy_fit.theta)


def test_as_good_as_scipy_trf_from_the_same_starts(noisy, noisy_fit):
  x, y = noisy
  grid = forms.paper_grid()  # 20 random starts of the grid keep the oracle fast
  starts = grid[np.random.default_rng(0).choice(len(grid), 20, replace=False)]
  bounds = ([0, 0, -np.inf, 0], [np.inf, np.inf, 0, np.inf])
  scipy_best = np.inf
  for start in starts:
    try:
      p, _ = optimize.curve_fit(law, x, y, p0=start, bounds=bounds, method='trf', maxfev=10_000)
    except RuntimeError:  # scipy gives up on some starts; the paper's loop skips them too
      continue
    scipy_best = min(scipy_best, np.mean((law(x, *p) - y) ** 2))
  ours = solver.fit('saturation_both', x, y, starts=starts)
  assert ours.mse <= scipy_best * (1 + 1e-6)
  assert noisy_fit.mse <= scipy_best * (1 + 1e-6)


def test_log_loss_power_law_recovers_exactly():
  y = 3.0 * X**-0.1
  fit = solver.fit('power_law', X, y, loss='log')
  assert fit.params['a'] == pytest.approx(3.0, rel=1e-6)
  assert fit.params['c'] == pytest.approx(-0.1, rel=1e-6)
  slope, intercept = forms.loglog_line(X, y)
  assert slope == pytest.approx(-0.1) and np.exp(intercept) == pytest.approx(3.0)


def test_a_log_loss_power_law_is_solved_exactly_without_starts():
  # A straight line in log-log space: least squares has one solution, found without the
  # multi-start solver (and without compiling its programs).
  y = 3.0 * X**-0.1 * np.exp(np.random.default_rng(0).normal(0, 0.05, X.shape))
  programs = solver.solve_starts._cache_size()
  fit = solver.fit('power_law', X, y, loss='log')
  assert solver.solve_starts._cache_size() == programs
  slope, intercept = np.polyfit(np.log(X), np.log(y), 1)
  np.testing.assert_allclose(fit.theta, [intercept, slope], rtol=1e-10)
  log_residual = np.log(fit.predict(X)) - np.log(y)
  assert fit.objective == pytest.approx(np.mean(log_residual**2), rel=1e-10)


def test_huber_resists_an_outlier():
  y = law(X, **TRUE)
  y[12] += 0.2
  truth = law(X, **TRUE)
  errors = {}
  for loss in ('linear', 'huber'):
    fit = solver.fit('saturation_both', X, y, loss=loss)
    errors[loss] = np.max(np.abs(np.delete(fit.predict(X) - truth, 12)))
  assert errors['huber'] < 0.2 * errors['linear']


@pytest.mark.parametrize('form', list(forms.FORMS.values()), ids=lambda f: f.name)
def test_analytic_jacobian_matches_autodiff(form):
  theta = jnp.asarray(form.from_natural(form.start_grid()[7]) + 0.3)
  log_x = jnp.log(jnp.asarray(X[::5]))
  with jax.enable_x64(True):
    theta, log_x = theta.astype(jnp.float64), log_x.astype(jnp.float64)
    _, jac = form.value_and_jac(theta, log_x)
    auto = jax.jacfwd(lambda t: form.value_and_jac(t, log_x)[0])(theta)
  np.testing.assert_allclose(jac, auto, rtol=1e-10, atol=1e-14)


def test_saturation_round_trips_natural_parameters():
  p = np.array([70.0, np.exp(18.0), -0.25, 0.15])
  theta = forms.SATURATION_BOTH.from_natural(p)
  np.testing.assert_allclose(forms.SATURATION_BOTH.to_natural(theta), p, rtol=1e-12)
  assert theta[1] == pytest.approx(18.0)


@pytest.mark.parametrize(
    'x, y, message',
    [
        ([1.0, 2.0, np.nan, 4.0, 5.0], [0.5] * 5, 'NaN'),
        ([1.0, 0.0, 3.0, 4.0, 5.0], [0.5] * 5, 'compute must be positive'),
        ([1.0, 2.0, 3.0], [0.5] * 3, 'only 3 points'),
    ],
)
def test_bad_input_names_the_problem(x, y, message):
  with pytest.raises(ValueError, match=message):
    solver.fit('saturation_both', x, y)


def test_unknown_form_and_loss():
  with pytest.raises(ValueError, match='unknown form'):
    solver.fit('exponential', X, X)
  with pytest.raises(ValueError, match='unknown loss'):
    solver.fit('power_law', X, X, loss='l1')
