"""What `python -m fitting` tells a reader: readable reports, warnings, refusals, honest
crossover intervals, and one-line errors for bad input."""

import json

import numpy as np
import pandas as pd
import pytest

import results_rows
from fitting import bootstrap, checks, cli, compare, forms, solver, text


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  """Two architectures × two datasets; cosine runs on a model × samples grid."""
  rng = np.random.default_rng(0)
  laws = {'clip': (3.0, -0.1, 0.2), 'mammut': (9.0, -0.14, 0.15)}
  rows = []
  for arch, (a, c, d) in laws.items():
    for dataset in ('dfn', 'datacomp'):
      for gflops in np.geomspace(2.0, 200.0, 5):
        for samples in np.geomspace(1e6, 1e9, 7):
          skew = np.log10(samples / (1e5 * gflops))
          error = a * (gflops * samples + np.exp(17.0)) ** c + d + 0.01 * skew**2
          rows.append(results_rows.row(arch, dataset, gflops, samples, error + rng.normal(0, 2e-3)))
  return results_rows.write(rows, tmp_path_factory.mktemp('reports') / 'results.csv')


CLIP_DFN = ['--where', 'arch=clip', '--where', 'pretrain_dataset=dfn']


def run(capsys, *argv):
  status = cli.main(list(argv))
  out, err = capsys.readouterr()
  return status, out, err


def test_fit_prints_a_readable_report_and_json_only_when_asked(results, tmp_path, capsys):
  path = tmp_path / 'fit.json'
  argv = ['fit', '--results', results, '--task', 'imagenet1k', *CLIP_DFN, '--bootstrap', '16']
  argv += ['--heldout-threshold', '1e10', '--predict-at', '1e12', '--json', str(path)]
  status, out, _ = run(capsys, *argv)
  assert status == 0
  got = json.loads(path.read_text())
  assert not out.lstrip().startswith('{')
  assert out.startswith('clip, dfn: E = a·(C + b)^c + d (saturation_both, least squares)')
  assert f"fitted on {got['n_points']} frontier points" in out
  assert f"MSE {got['mse']:.4g}" in out
  intervals = got['bootstrap']['param_intervals']
  lines = out.splitlines()
  for name, value in got['params'].items():
    lo, hi = intervals[name]
    label = name.replace('_', ' ')  # ln_b reads 'ln b'
    row = [l for l in lines if l.strip().startswith(label + ' ') and f'{value:.4g}' in l]
    assert row and f'{lo:.4g} .. {hi:.4g}' in row[0], (name, out)
  for point in got['held_out']['points']:
    assert f"{point['relative_error']:+.1%}" in out
  prediction = got['predictions'][0]
  lo, hi = prediction['interval']
  assert any(
      l.split()[0] == '1e+12' and f"{prediction['error']:.4g}" in l and f'{lo:.4g} .. {hi:.4g}' in l
      for l in lines
  )
  assert f"seed noise {got['seed_noise']}" in out

  # --json - puts the JSON on stdout in place of the report.
  argv = ['fit', '--results', results, '--task', 'imagenet1k', *CLIP_DFN, '--json', '-']
  status, out, _ = run(capsys, *argv)
  assert status == 0 and set(json.loads(out)) >= {'params', 'warnings', 'frontier'}


def test_optimal_explains_slope_and_coefficient_in_words(results, tmp_path, capsys):
  path = tmp_path / 'opt.json'
  argv = ['optimal', '--results', results, '--task', 'imagenet1k', *CLIP_DFN, '--json', str(path)]
  status, out, _ = run(capsys, *argv)
  assert status == 0
  (row,) = json.loads(path.read_text())['allocation']
  slope, k = row['slope'], row['coefficient']
  assert f'samples_seen ≈ {k:.3g} · C^{slope:.3f}' in out
  assert f'10× more compute goes with {10**slope:.3g}× more samples_seen' in out
  assert f'{10 ** (1 - slope):.3g}× more GFLOPs per sample' in out
  assert f"gives {k * row['x_max'] ** slope:.3g}" in out
  assert not out.lstrip().startswith('{')


def test_a_parameter_on_its_bound_is_a_warning(tmp_path, capsys):
  # Error falls like a power law minus an offset: the best offset d would be negative, so the
  # fit puts d on its bound of 0, ln d = -60.
  rows = [
      results_rows.row('clip', 'dfn', 10.0, c / 10, 2.0 * c**-0.1 - 0.05)
      for c in np.geomspace(1e7, 1e11, 12)
  ]
  path = results_rows.write(rows, tmp_path / 'results.csv')
  out_json = tmp_path / 'fit.json'
  argv = ['fit', '--results', path, '--task', 'imagenet1k', '--json', str(out_json)]
  status, out, _ = run(capsys, *argv)
  assert status == 0
  warnings = json.loads(out_json.read_text())['warnings']
  assert any(w.startswith('d is on the solver bound (ln d = -60') for w in warnings), warnings
  assert 'warnings:' in out and 'd is on the solver bound (ln d = -60' in out


def test_bound_hits_name_the_parameter():
  form = forms.SATURATION_BOTH
  theta = np.array([1.0, -60.0, np.log(0.2), np.log(0.1)])
  fit = solver.Fit(form, 'linear', theta, 0.0, 0.0, 20, 1.0)
  (warning,) = checks.bound_hits(fit)
  assert warning.startswith('b is on the solver bound (ln b = -60, so b = 8.76e-27)')
  assert checks.bound_hits(solver.Fit(form, 'linear', theta * 0.5, 0.0, 0.0, 20, 1.0)) == []


def test_a_frontier_too_small_for_the_form_is_a_warning(results, tmp_path, capsys):
  path = tmp_path / 'fit.json'
  argv = ['fit', '--results', results, '--task', 'imagenet1k', *CLIP_DFN, '--form', 'power_law']
  argv += ['--max-x', '3e7', '--bootstrap', '64', '--resample', 'points', '--json', str(path)]
  status, out, _ = run(capsys, *argv)
  assert status == 0
  got = json.loads(path.read_text())
  assert got['n_points'] == 3
  small = 'only 3 frontier points for the 2 parameters of power_law'
  undetermined = 'of bootstrap replicates had fewer distinct points than the 2 parameters'
  for expected in (small, undetermined):
    assert any(expected in w for w in got['warnings']), got['warnings']
    assert expected in out
  # Eight points for four parameters are enough: no warning.
  assert checks.frontier_size(8, 4, 'saturation_both') is None


@pytest.mark.parametrize(
    'argv, column, values',
    [
        (['fit'], 'arch', ['clip', 'mammut']),
        (['fit', '--where', 'arch=clip'], 'pretrain_dataset', ['datacomp', 'dfn']),
        (['optimal', '--where', 'arch=mammut'], 'pretrain_dataset', ['datacomp', 'dfn']),
        (['plot', '--by', 'arch', '--out', 'laws.png'], 'pretrain_dataset', ['datacomp', 'dfn']),
        (['compare', '--by', 'arch', '--a', 'mammut', '--b', 'clip'], 'pretrain_dataset', None),
    ],
)
def test_pooling_procedures_is_refused_with_their_values(results, capsys, argv, column, values):
  status, out, err = run(capsys, *argv, '--results', results, '--task', 'imagenet1k')
  assert status == 2 and out == ''
  assert err.count('\n') == 1, err
  values = values or ['datacomp', 'dfn']
  assert f'hold {len(values)} values of {column}: {values}' in err
  assert f'--where {column}=VALUE' in err


def test_where_names_what_there_is(results, capsys):
  argv = ['fit', '--results', results, '--task', 'imagenet1k', '--where', 'dataset=dfn']
  status, _, err = run(capsys, *argv)
  assert status == 2 and "no column 'dataset' to select on" in err and "'pretrain_dataset'" in err
  status, _, err = run(capsys, *argv[:-2], '--where', 'pretrain_dataset=laion')
  assert status == 2
  assert "no points with pretrain_dataset='laion'; choose from ['datacomp', 'dfn']" in err


@pytest.mark.parametrize(
    'argv, message',
    [
        (['plot', *CLIP_DFN, '--by', 'model', '--out', 'laws.jpg'], "must end in one of ['.pdf'"),
        (['fit', *CLIP_DFN, '--bootstrap', '-5'], 'bootstrap must be >= 0 replicates, got -5'),
        (['fit', *CLIP_DFN, '--bootstrap', '4', '--level', '95'], 'level must be in (0, 1)'),
    ],
)
def test_bad_input_is_one_line(results, capsys, argv, message):
  status, _, err = run(capsys, *argv, '--results', results, '--task', 'imagenet1k')
  assert status == 2 and err.count('\n') == 1 and message in err, err


def power_laws(a, c):
  """A bootstrap of power-law replicates a·C^c (natural parameters), around the first."""
  form = forms.POWER_LAW
  thetas = np.stack([form.from_natural(np.array([ai, ci])) for ai, ci in zip(a, c)])
  fit = solver.Fit(form, 'linear', thetas[0], 0.0, 0.0, 10, 1.0)
  return bootstrap.Bootstrap(fit, thetas, 0)


def test_a_crossover_outside_its_replicates_interval_says_so():
  # The point fits, 2·C^-0.1 and C^-0.05, cross at 2^20 ≈ 1.05e6. B's replicates are steeper:
  # half of them cross A near 2^50 ≈ 1.1e15 (C^-0.08 and so on), half never (C^-0.1).
  n = 40
  a = power_laws(np.full(n, 2.0), np.full(n, -0.1))
  steep = np.where(np.arange(n) % 2 == 0, np.linspace(-0.079, -0.081, n), -0.1)
  b = power_laws(np.ones(n), np.concatenate([[-0.05], steep[1:]]))
  interval = compare.crossover_interval(a, b)
  assert interval.point == pytest.approx(2.0**20, rel=1e-6)
  assert interval.share_crossing == pytest.approx(0.5, abs=0.03)
  assert interval.point < interval.low < interval.high  # the interval excludes its point ...
  assert interval.share_below_point == 0.0
  note = interval.note  # ... and says why
  assert 'the point fits cross at 1e+06, outside the interval of the replicates' in note
  assert 'does not support the point estimate' in note
  assert f'only {interval.share_crossing:.0%} of replicates cross' in note


def test_a_crossover_the_bootstrap_agrees_with_needs_no_note():
  n = 40  # 4·C^-0.1 and C^-0.05 cross at 4^20 ≈ 1.1e12; the replicates around it
  a = power_laws(np.full(n, 4.0), np.full(n, -0.1))
  b = power_laws(np.ones(n), np.concatenate([[-0.05], np.linspace(-0.049, -0.051, n - 1)]))
  interval = compare.crossover_interval(a, b)
  assert interval.share_crossing == 1.0 and interval.low <= interval.point <= interval.high
  assert interval.note is None


def test_compare_rows_carry_the_share_crossing_and_the_note(results, tmp_path, capsys):
  table_path = tmp_path / 'cmp.csv'
  argv = ['compare', '--results', results, '--task', 'imagenet1k', '--by', 'arch', '--a', 'mammut']
  argv += ['--b', 'clip', '--across', 'pretrain_dataset', '--bootstrap', '16']
  argv += ['--resample', 'points', '--table', str(table_path)]
  status, out, _ = run(capsys, *argv)
  assert status == 0
  rows = pd.read_csv(table_path, keep_default_na=False)
  assert {'crossover', 'share_crossing', 'cross_low', 'cross_high', 'note'} <= set(rows.columns)
  for row in rows.itertuples():
    inside = row.cross_low <= row.crossover <= row.cross_high
    assert inside or 'outside the interval' in row.note
  assert 'note: imagenet1k (dfn): bootstrap intervals: seed noise excluded' in out


def test_the_annealing_check_is_in_the_report():
  summary = dict(
      label='clip',
      form='power_law',
      loss='linear',
      params={'a': 2.0, 'c': -0.1},
      n_points=6,
      mse=1e-6,
      share_of_starts_at_best=0.5,
      annealing=dict(
          law=dict(l0=0.3, a=1.2, alpha=0.4, c=0.05, mse=2e-6),
          held_out=[dict(run_id='cos-1', actual=0.5, predicted=0.52, relative_error=0.04)],
      ),
  )
  out = text.fit_text(summary)
  assert 'LR-annealing law: E = l0 + a·S1^-alpha - c·S2, l0=0.3, a=1.2, alpha=0.4, c=0.05' in out
  (row,) = [l for l in out.splitlines() if l.strip().startswith('cos-1')]
  assert row.split()[1:] == ['0.5', '0.52', '+4.0%']
