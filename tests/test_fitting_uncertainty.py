"""Bootstrap, held-out prediction and crossovers, on data from known laws."""

import numpy as np
import pytest

from fitting import bootstrap, compare, forms, heldout, solver

X = np.geomspace(1e7, 1e11, 20)


def law(x, a=70.0, b=np.exp(18.0), c=-0.25, d=0.15):
  return a * (x + b) ** c + d


@pytest.fixture(scope='module')
def data():
  rng = np.random.default_rng(1)
  y = law(X) + rng.normal(0, 3e-3, X.shape)
  return X, y, solver.fit('saturation_both', X, y)


def known(form, natural):
  """A Fit at known parameters, to test comparisons without solving anything."""
  theta = form.from_natural(np.asarray(natural, np.float64))
  return solver.Fit(form, 'linear', theta, 0.0, 0.0, 0, 1.0)


def test_point_bootstrap_is_reproducible_and_brackets_the_fit(data):
  x, y, fit = data
  first = bootstrap.resample_points(fit, x, y, n=32, seed=3)
  again = bootstrap.resample_points(fit, x, y, n=32, seed=3)
  other = bootstrap.resample_points(fit, x, y, n=32, seed=4)
  np.testing.assert_array_equal(first.thetas, again.thetas)
  assert not np.array_equal(first.thetas, other.thetas)
  lo, hi = first.prediction_interval([1e9, 1e12], level=0.9)
  assert np.all(lo <= fit.predict([1e9, 1e12]) + 1e-3) and np.all(
      fit.predict([1e9, 1e12]) <= hi + 1e-3
  )
  assert lo[0] < law(1e9) < hi[0]
  c_lo, c_hi = first.param_intervals()['c']
  assert c_lo <= fit.params['c'] <= c_hi <= 0


def test_sigma_band_reports_its_true_coverage(data):
  x, y, fit = data
  boot = bootstrap.resample_points(fit, x, y, n=32, seed=3)
  lo, hi, coverage = boot.sigma_band([1e12], 0.74)
  assert coverage == pytest.approx(0.54, abs=0.01)  # the paper's "95%" band
  assert lo[0] < fit.predict([1e12])[0] < hi[0]


def test_run_bootstrap_takes_each_replicates_own_frontier(data):
  x, y, fit = data
  # each frontier point is the final checkpoint of a run that also has two worse checkpoints
  xs = np.concatenate([x, x * 0.5, x * 0.7])
  ys = np.concatenate([y, y + 0.05, y + 0.02])
  runs = np.tile(np.arange(len(x)), 3)
  boot = bootstrap.resample_runs(fit, xs, ys, runs, n=32, seed=0)
  assert boot.thetas.shape == (32, 4) and np.isfinite(boot.thetas).all()
  again = bootstrap.resample_runs(fit, xs, ys, runs, n=32, seed=0)
  np.testing.assert_array_equal(boot.thetas, again.thetas)


def test_held_out_predicts_an_exact_law():
  y = law(X)
  result = heldout.held_out(X, y, threshold=1e10)
  assert len(result.x) == np.sum(X > 1e10) and np.all(np.diff(result.x) > 0)
  assert np.max(np.abs(result.relative_error)) < 1e-3
  assert set(result.rows()[0]) == {'x', 'actual', 'predicted', 'relative_error'}
  with pytest.raises(ValueError, match='no points above'):
    heldout.held_out(X, y, threshold=1e12)


def test_crossover_of_two_known_power_laws():
  # 2·C^-0.1 = C^-0.05 at C = 2^20
  a = known(forms.POWER_LAW, [2.0, -0.1])
  b = known(forms.POWER_LAW, [1.0, -0.05])
  assert compare.crossover(a, b) == pytest.approx(2.0**20, rel=1e-9)
  assert compare.crossover(a, known(forms.POWER_LAW, [1.0, -0.1])) is None


def test_crossover_of_two_forms():
  # 2·C^-0.1 + 0.5 (saturation_both, b ~ 0) meets 4·C^-0.1 (power law) at C = 4^10
  a = known(forms.SATURATION_BOTH, [2.0, 1e-8, -0.1, 0.5])
  b = known(forms.POWER_LAW, [4.0, -0.1])
  assert compare.crossover(a, b) == pytest.approx(4.0**10, rel=1e-6)
  assert compare.crossover(b, a) == pytest.approx(4.0**10, rel=1e-6)


def test_a_shared_width_changes_no_replicate(data):
  # Padding to the longest frontier of a command (so that one program serves them all) adds
  # zero-weight points, which must leave every replicate where it was.
  x, y, fit = data
  alone = bootstrap.resample_points(fit, x, y, n=16, seed=5, grid_starts=1)
  padded = bootstrap.resample_points(fit, x, y, n=16, seed=5, grid_starts=1, width=64)
  # (to rounding: sums over 20 or 64 points, most of them zero, run in another order)
  np.testing.assert_allclose(padded.thetas, alone.thetas, rtol=1e-6, atol=1e-6)


def test_a_log_loss_power_law_bootstrap_refits_each_draw_exactly():
  y = 1e3 * X**0.5 * np.exp(np.random.default_rng(4).normal(0, 0.05, X.shape))
  fit = solver.fit('power_law', X, y, loss='log')
  boot = bootstrap.resample_points(fit, X, y, n=8, seed=0)
  draws = np.random.default_rng(0).multinomial(len(X), np.full(len(X), 1 / len(X)), size=8)
  for theta, counts in zip(boot.thetas, draws):
    slope, intercept = np.polyfit(np.log(np.repeat(X, counts)), np.log(np.repeat(y, counts)), 1)
    np.testing.assert_allclose(theta, [intercept, slope], rtol=1e-9)


def test_held_out_fits_with_the_fitter_it_is_given():
  calls = []

  def fitter(form, x, y, **kwargs):
    calls.append((form, len(x), kwargs))
    return solver.fit(form, x, y, **kwargs)

  result = heldout.held_out(X, law(X), 1e10, 'saturation_both', fitter=fitter, loss='linear')
  assert calls == [('saturation_both', int(np.sum(X <= 1e10)), dict(loss='linear'))]
  assert np.max(np.abs(result.relative_error)) < 1e-3


def test_crossover_interval_and_probability_from_bootstraps(data):
  x, y, fit_a = data
  y_b = law(x, a=20.0, c=-0.15, d=0.05) + np.random.default_rng(2).normal(0, 3e-3, x.shape)
  fit_b = solver.fit('saturation_both', x, y_b)
  boot_a = bootstrap.resample_points(fit_a, x, y, n=32, seed=1)
  boot_b = bootstrap.resample_points(fit_b, x, y_b, n=32, seed=2)
  interval = compare.crossover_interval(boot_a, boot_b)
  assert interval.point is not None and interval.share_crossing > 0.5
  assert interval.low <= interval.point <= interval.high
  # A is better over the data; B's lower floor (d = 0.05 against 0.15) wins far beyond it
  assert compare.probability_a_beats_b(boot_a, boot_b, 1e9) == 1.0
  assert compare.probability_a_beats_b(boot_a, boot_b, 1e18) == 0.0
