"""`python -m fitting` end to end on a synthetic sweep the test writes itself."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import results_rows
from fitting import cli

# Per-architecture laws: MaMMUT starts worse and scales better; they cross at 1.53e10.
LAWS = {'clip': (3.0, -0.1, 0.2), 'mammut': (9.0, -0.14, 0.15)}


def law(arch, c):
  a, exponent, d = LAWS[arch]
  return a * (c + np.exp(17.0)) ** exponent + d


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  """Cosine runs over a model × samples grid; off-optimal allocations pay a penalty."""
  rng = np.random.default_rng(0)
  rows = []
  for arch in LAWS:
    for dataset in ('dfn', 'datacomp'):
      for gflops in np.geomspace(2.0, 200.0, 5):
        for samples in np.geomspace(1e6, 1e9, 7):
          c = gflops * samples
          skew = np.log10(samples / (1e5 * gflops))  # 0 on the optimal allocation
          error = law(arch, c) + 0.01 * skew**2 + rng.normal(0, 2e-3)
          rows.append(
              results_rows.row(
                  arch,
                  dataset,
                  gflops,
                  samples,
                  error,
                  run_id=f'{arch}-{dataset}-{gflops:.0f}-{samples:.0f}',
                  model=f'{arch}-{gflops:.0f}',
              )
          )
  return pathlib.Path(results_rows.write(rows, tmp_path_factory.mktemp('cli') / 'results.csv'))


def test_fit_writes_json_with_heldout_and_intervals(results, tmp_path):
  out = tmp_path / 'fit.json'
  argv = [
      'fit',
      '--results',
      str(results),
      '--task',
      'imagenet1k',
      '--where',
      'arch=clip',
      '--where',
      'pretrain_dataset=dfn',
      '--heldout-threshold',
      '1e10',
      '--bootstrap',
      '32',
      '--predict-at',
      '1e12',
      '--json',
      str(out),
  ]
  assert cli.main(argv) == 0
  got = json.loads(out.read_text())
  assert set(got['params']) == {'a', 'b', 'ln_b', 'c', 'd'}
  assert got['n_points'] == sum(p['x'] <= 1e10 for p in got['frontier'])
  assert all(abs(p['relative_error']) < 0.1 for p in got['held_out']['points'])
  assert got['bootstrap']['replicates'] == 32
  lo, hi = got['predictions'][0]['interval']
  assert lo <= got['predictions'][0]['error'] <= hi


def test_compare_across_datasets_writes_a_table(results, tmp_path):
  out, md = tmp_path / 'cmp.json', tmp_path / 'cmp.md'
  argv = [
      'compare',
      '--results',
      str(results),
      '--tasks',
      'imagenet1k:acc1',
      '--by',
      'arch',
      '--a',
      'mammut',
      '--b',
      'clip',
      '--across',
      'pretrain_dataset',
      '--at',
      '1e12',
      '--bootstrap',
      '32',
      '--resample',
      'points',
      '--table',
      str(md),
      '--json',
      str(out),
  ]
  assert cli.main(argv) == 0
  got = json.loads(out.read_text())
  assert len(got['table']) == 2
  for row in got['table']:
    assert 5e9 < row['crossover'] < 5e10
    assert row['P(mammut<clip)@1e+12'] >= 0.9
  assert md.read_text().startswith('| task | pretrain_dataset |')


def test_plot_and_optimal(results, tmp_path):
  figure = tmp_path / 'laws.png'
  common = ['--results', str(results), '--task', 'imagenet1k', '--where', 'pretrain_dataset=dfn']
  assert cli.main(['plot', *common, '--by', 'arch', '--out', str(figure)]) == 0
  assert figure.stat().st_size > 10_000
  out = tmp_path / 'opt.json'
  argv = [
      'optimal',
      *common,
      '--where',
      'arch=clip',
      '--quantity',
      'samples_seen',
      'params',
      '--json',
      str(out),
  ]
  assert cli.main(argv) == 0
  samples, params = json.loads(out.read_text())['allocation']
  assert 0.2 < samples['slope'] < 0.8 and 0.2 < params['slope'] < 0.8


def test_bad_input_is_a_clear_error(results, capsys):
  assert cli.main(['fit', '--results', str(results), '--task', 'coco']) == 2
  assert "unknown task 'coco'" in capsys.readouterr().err
  argv = ['fit', '--results', str(results), '--task', 'imagenet1k', '--where', 'arch=siglip']
  assert cli.main(argv) == 2
  assert "no points with arch='siglip'" in capsys.readouterr().err
  argv = ['fit', '--results', str(results), '--task', 'imagenet1k', '--max-x', '1e7']
  assert cli.main(argv + ['--where', 'arch=clip', '--where', 'pretrain_dataset=dfn']) == 2
  assert 'only 2 frontier points for the 4 parameters' in capsys.readouterr().err
  argv = [
      'compare',
      '--results',
      str(results),
      '--task',
      'imagenet1k',
      '--by',
      'arch',
      '--a',
      'mammut',
      '--b',
      'clip',
      '--where',
      'pretrain_dataset=dfn',
      '--schedule-check',
  ]
  assert cli.main(argv) == 2  # the sweep has cosine runs only
  assert 'needs both constant-LR and cosine points' in capsys.readouterr().err
  argv = [
      'fit',
      '--results',
      str(results),
      '--task',
      'imagenet1k',
      '--where',
      'arch=clip',
      '--where',
      'pretrain_dataset=dfn',
      '--annealing-check',
  ]
  assert cli.main(argv) == 2  # every point is a cosine point: nothing to fit the law on
  assert 'needs >= 4 constant-LR or cooldown points, got 0' in capsys.readouterr().err


def test_help_documents_every_flag(capsys):
  for command in cli.COMMANDS:
    with pytest.raises(SystemExit):
      cli.main([command, '--help'])
    text = capsys.readouterr().out
    for action in cli.parser()._subparsers._group_actions[0].choices[command]._actions:
      assert action.help, f'{command} {action.option_strings} has no help'
      assert all(flag in text for flag in action.option_strings)


def test_fitting_does_not_import_the_training_stack():
  code = (
      'import sys, fitting.cli; '
      'print(sorted(m for m in sys.modules if m.split(".")[0] == "scaling_vlm"))'
  )
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == '[]'


def test_paper_csv_format_gives_the_same_fit(results, tmp_path):
  ours = pd.read_csv(results)
  wide = pd.DataFrame(
      {
          'model': ours['model'],
          'namespace': ours['run_id'],
          'pretrain_dataset': ours['pretrain_dataset'],
          'downstream_dataset': ours['task'],
          'lr_scheduler': ours['lr_schedule'],
          'total_samples_seen': ours['total_samples'],
          'epoch': 4,
          'total_epochs': 4,
          'gflops': ours['gflops_per_sample'],
          'global_batch_size': ours['global_batch_size'],
          'warmup': ours['warmup'],
          'acc1': ours['value'],
      }
  )
  paper = tmp_path / 'all_results.csv.gz'
  wide.to_csv(paper, index=False)
  fits = []
  for path, layout in ((results, 'ours'), (paper, 'paper-csv')):
    out = tmp_path / f'{layout}.json'
    argv = [
        'fit',
        '--results',
        str(path),
        '--format',
        layout,
        '--task',
        'imagenet1k',
        '--where',
        'model=clip-2',
        '--where',
        'pretrain_dataset=dfn',
        '--json',
        str(out),
    ]
    assert cli.main(argv) == 0
    fits.append(json.loads(out.read_text()))
  assert fits[0]['frontier'] == fits[1]['frontier']
  assert fits[0]['params'] == pytest.approx(fits[1]['params'], rel=1e-9)


@pytest.mark.parametrize(
    'column, cell, what',
    [
        ('compute_gflops', '4.2 GFLOPs', 'non-numeric compute_gflops'),
        ('value', 'inf', 'infinite value'),
        ('compute_gflops', 'inf', 'infinite compute_gflops'),
    ],
)
def test_bad_cells_are_one_line_errors_naming_the_rows(
    results, tmp_path, capsys, column, cell, what
):
  frame = pd.read_csv(results)
  frame[column] = frame[column].astype(object)
  frame.loc[3, column] = cell  # run clip-dfn-2-..., a cell a torn or hand-edited CSV can hold
  path = tmp_path / 'bad.csv'
  frame.to_csv(path, index=False)
  argv = ['fit', '--results', str(path), '--task', 'imagenet1k', '--where', 'arch=clip']
  assert cli.main(argv + ['--where', 'pretrain_dataset=dfn']) == 2
  error = capsys.readouterr().err
  assert error.count('\n') == 1, error
  assert f'1 rows of imagenet1k/acc1 have {what}' in error
  assert f"runs ['{frame.run_id[3]}']" in error and 'in row 3' in error
