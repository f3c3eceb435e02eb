"""Seed replicates: the bootstrap draws configurations and their seeds, and says so."""

import numpy as np
import pandas as pd
import pytest

import results_rows
from fitting import bootstrap, filters, procedure, replicates, table

SEED_NOISE = 0.02  # spread of the error between seeds of one configuration
WHERE = dict(arch='clip', pretrain_dataset='dfn')


def sweep(seeds: int, noise: float) -> pd.DataFrame:
  """Cosine runs over a model × samples grid, each trained with `seeds` seeds."""
  rng = np.random.default_rng(0)
  rows = []
  for gflops in np.geomspace(2.0, 200.0, 5):
    for samples in np.geomspace(1e6, 1e9, 7):
      c = gflops * samples
      skew = np.log10(samples / (1e5 * gflops))  # 0 on the optimal allocation
      for seed in range(seeds):
        error = 3.0 * (c + np.exp(17.0)) ** -0.1 + 0.2 + 0.01 * skew**2
        rows.append(
            results_rows.row(
                'clip',
                'dfn',
                gflops,
                samples,
                error + rng.normal(0, noise),
                run_id=f'{gflops:.0f}-{samples:.0f}-s{seed}',
                model=f'clip-{gflops:.0f}',
                seed=seed,
            )
        )
  frame = pd.DataFrame(rows)
  return filters.eligible_points(frame[list(table.COLUMNS) + ['seed']], 'imagenet1k', 'acc1')


def width(boot, x=1e12) -> float:
  lo, hi = boot.prediction_interval([x], 0.9)
  return float(hi[0] - lo[0])


def test_replicates_are_found_by_configuration_and_seed():
  found = replicates.find(sweep(seeds=3, noise=SEED_NOISE))
  assert found.present and list(found.seeds) == [3] * 35
  assert found.seed_noise() == 'included (3 seeds)'
  assert len(set(found.run)) == 105 and len(set(found.config)) == 35
  single = replicates.find(sweep(seeds=1, noise=SEED_NOISE))
  assert not single.present and single.seed_noise() == 'excluded: one seed per run'
  # A table without the column is one seed per run, too.
  assert not replicates.find(sweep(1, 0.0).drop(columns='seed')).present


def test_replicate_aware_bootstrap_widens_intervals_where_seeds_differ():
  points = sweep(seeds=3, noise=SEED_NOISE)
  aware = procedure.fit_procedure(points, where=WHERE, bootstrap=200, seed=0)
  assert aware.seed_noise == 'included (3 seeds)'
  assert aware.summary()['seed_noise'] == 'included (3 seeds)'
  # The same runs drawn as if each seed were a configuration of its own.
  fitted = aware.points
  naive = bootstrap.resample_runs(
      aware.fit, fitted['x'], fitted['error'], fitted['run_id'], n=200, seed=0
  )
  assert width(aware.boot) > 1.3 * width(naive)


def test_without_replicates_the_bootstrap_is_the_plain_one_and_says_so():
  points = sweep(seeds=1, noise=SEED_NOISE)
  fitted = procedure.fit_procedure(points, where=WHERE, bootstrap=64, seed=0)
  plain = bootstrap.resample_runs(
      fitted.fit, fitted.points['x'], fitted.points['error'], fitted.points['run_id'], 64, 0
  )
  np.testing.assert_array_equal(fitted.boot.thetas, plain.thetas)
  assert fitted.summary()['seed_noise'] == 'excluded: one seed per run'
  points_boot = procedure.fit_procedure(points, where=WHERE, bootstrap=8, resample='points')
  assert points_boot.seed_noise.startswith('excluded: frontier points resampled')
  assert procedure.fit_procedure(points, where=WHERE).seed_noise is None  # no bootstrap


def test_seeds_that_agree_widen_nothing():
  # Three identical seeds are one run three times: drawn as replicates they give the intervals
  # of the one-seed table; drawn as independent runs they would look three times as sure.
  one = procedure.fit_procedure(sweep(1, 0.0), where=WHERE, bootstrap=200, seed=0)
  three = procedure.fit_procedure(sweep(3, 0.0), where=WHERE, bootstrap=200, seed=0)
  assert three.seed_noise == 'included (3 seeds)'
  assert width(three.boot) == pytest.approx(width(one.boot), rel=0.3)


def test_measured_seed_noise_carries_to_runs_trained_once():
  # One seed per run, but a seed noise measured elsewhere: the intervals widen with it, the
  # point fit stays, and the report says where the noise came from.
  points = sweep(seeds=1, noise=SEED_NOISE)
  plain = procedure.fit_procedure(points, where=WHERE, bootstrap=200, seed=0)
  noisy = procedure.fit_procedure(points, where=WHERE, bootstrap=200, seed=0, run_noise=0.05)
  assert noisy.fit.params == plain.fit.params
  assert width(noisy.boot) > 1.5 * width(plain.boot)
  assert noisy.seed_noise == 'included: 5.0% per run, as measured on replicates'
  # Where some runs have replicates, those keep their own spread and the rest get the noise.
  mixed = sweep(seeds=3, noise=SEED_NOISE)
  mixed = mixed[(mixed['seed'] == 0) | (mixed['gflops_per_sample'] < 3)]
  both = procedure.fit_procedure(mixed, where=WHERE, bootstrap=50, seed=0, run_noise=0.05)
  assert both.seed_noise == (
      'included (1-3 seeds per configuration) where replicated; elsewhere 5.0% per run, as '
      'measured on replicates'
  )
  with pytest.raises(ValueError, match='run_noise must be >= 0'):
    procedure.fit_procedure(points, where=WHERE, bootstrap=8, run_noise=-0.1)
