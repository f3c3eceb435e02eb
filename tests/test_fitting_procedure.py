"""`fitting.fit_procedure` on a hand-made table: the law it recovers, and the CLI as its shell."""

import json

import numpy as np
import pytest

import results_rows
from fitting import cli, filters, procedure, table

# E = a·C^c per architecture, exactly: a fit must give these numbers back.
LAWS = {'clip': (2.0, -0.1), 'mammut': (4.0, -0.13)}


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  """One cosine run per compute, from 1e7 to 1e11 GFLOPs, on each architecture's law."""
  rows = []
  for arch, (a, c) in LAWS.items():
    for compute in np.geomspace(1e7, 1e11, 9):
      rows.append(
          results_rows.row(
              arch,
              'dfn',
              100.0,
              compute / 100,
              a * compute**c,
              run_id=f'{arch}-{compute:.0e}',
              model=f'{arch}-{compute:.0e}',
              params=1e9 if arch == 'clip' else 2e9,
          )
      )
  return results_rows.write(rows, tmp_path_factory.mktemp('procedure') / 'results.csv')


def _points(path):
  return filters.eligible_points(table.read_results(path), 'imagenet1k', 'acc1')


def test_the_law_and_its_held_out_points_come_back(results):
  # '1e9' as a command line gives it: compared with params as a number.
  fitted = procedure.fit_procedure(
      _points(results), where={'params': '1e9'}, form='power_law', heldout_threshold=1e10
  )
  assert fitted.label == '1e9' and set(fitted.points['arch']) == {'clip'}
  assert fitted.fit.params == pytest.approx({'a': 2.0, 'c': -0.1}, rel=1e-6)
  np.testing.assert_allclose(fitted.held_out.x, [10**10.5, 1e11])
  np.testing.assert_allclose(fitted.held_out.relative_error, 0, atol=1e-6)
  assert fitted.fit.n_points == 7  # the two points above the threshold are not fitted


def test_the_cli_writes_what_the_library_returns(results, tmp_path):
  out = tmp_path / 'fit.json'
  argv = ['fit', '--results', str(results), '--task', 'imagenet1k', '--where', 'arch=mammut']
  argv += ['--form', 'power_law', '--bootstrap', '8', '--resample', 'points', '--json', str(out)]
  assert cli.main(argv) == 0
  fitted = procedure.fit_procedure(
      _points(results),
      where=dict(arch='mammut'),
      form='power_law',
      bootstrap=8,
      resample='points',
  )
  assert fitted.fit.params == pytest.approx({'a': 4.0, 'c': -0.13}, rel=1e-6)
  library = json.loads(json.dumps(fitted.summary(), default=float))
  assert json.loads(out.read_text()) == library
  assert library['bootstrap']['param_intervals']['c'] == pytest.approx([-0.13, -0.13], rel=1e-6)
