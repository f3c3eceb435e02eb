"""The mini study end to end (`--quick`), in a real subprocess as the README runs it: every
run trained and evaluated into one table, laws fitted, figures and report written; a rerun
resumes and trains nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import types

import numpy as np
import pandas as pd
import pytest

from experiments.mini_study import analysis, plan, report
from fitting import filters, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _study(out) -> subprocess.CompletedProcess:
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)  # one CPU device per worker, as on a user's laptop
  return subprocess.run(
      [sys.executable, '-m', 'experiments.mini_study', '--out', str(out), '--quick'],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=900,
  )


@pytest.fixture(scope='module')
def study(tmp_path_factory):
  out = tmp_path_factory.mktemp('mini_study')
  first = _study(out)
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  return out, first


def _law(x):
  return 2 * x**-0.2


def _ladder(largest_errors):
  """Constant-LR points of two small models on E = 2 C^-0.2, and a largest model whose
  checkpoints (x = 100, 200, 400, 800) have the given errors."""
  rows = [('m1', x, _law(x) * 1.02) for x in (1, 2, 4, 8, 16)]
  rows += [('m1', x, _law(x)) for x in (32,)]  # m1's last checkpoint: on the law
  rows += [('m2', x, _law(x) * 1.1) for x in (10, 20, 40)] + [('m2', x, _law(x)) for x in (60, 90)]
  rows += [('m3', x, e) for x, e in zip((100, 200, 400, 800), largest_errors)]
  return pd.DataFrame(rows, columns=['model', 'x', 'error'])


def test_held_out_check_predicts_the_frontier_beyond_the_smaller_models():
  # The largest model's first two checkpoints are worse than m2 at less compute (dominated);
  # its last two lie on the law.
  points = _ladder([0.9, 0.85, _law(400), _law(800)])
  front = filters.frontier_points(points, analysis.FRONTIER)
  held = analysis._held_out(points, front, 'm3', 'power_law')
  assert held.threshold == 90
  np.testing.assert_array_equal(held.x, [400, 800])  # dominated checkpoints are not targets
  np.testing.assert_allclose(held.relative_error, 0, atol=0.03)
  # A largest model that never reaches the frontier leaves nothing to check: n/a, not 0%.
  points = _ladder([0.95, 0.9, 0.85, 0.82])
  front = filters.frontier_points(points, analysis.FRONTIER)
  assert analysis._held_out(points, front, 'm3', 'power_law') is None


def test_the_report_says_where_a_frontier_without_a_check_ends():
  points = _ladder([0.95, 0.9, 0.85, 0.82])  # m3 never beats m2's last checkpoint
  points['samples_seen'] = (points['x'] * 10).astype(int)
  fit = types.SimpleNamespace(frontier=filters.frontier_points(points, analysis.FRONTIER))
  fit.held_out = analysis._held_out(points, fit.frontier, 'm3', 'power_law')
  (line,) = report._frontier_ends([{'task': 'zeroshot_average', 'fits': {'clip': fit}}])
  assert line == (
      'zeroshot_average/clip: the frontier ends at m2 after 900 samples (90 GFLOPs, error '
      f'{_law(90):.3f})'
  )


def test_comparisons_set_procedures_apart_by_one_thing():
  assert plan.comparisons(['clip', 'mammut', 'clip_noisy', 'climp']) == [
      ('clip', 'mammut'),  # architecture, same data
      ('clip', 'clip_noisy'),  # data, same architecture
      ('clip', 'climp'),
      ('mammut', 'climp'),
  ]  # never mammut vs clip_noisy: two things differ


def test_the_noisy_procedure_trains_clip_on_the_noisy_world_under_its_own_names():
  runs = {r.name: r for r in plan.make_runs(plan.FULL)}
  noisy = [r for name, r in runs.items() if name.startswith('noisy_')]
  assert noisy and all(r.config.data.caption_noise == 0.5 for r in noisy)
  assert all(r.config.model.name.startswith('tiny-') for r in noisy)  # CLIP's own models
  assert all(r.config.data.caption_noise == 0 for n, r in runs.items() if 'noisy' not in n)
  assert 'noisy_tiny-4-const-8000' not in runs  # left out for time
  # A second seed of each procedure's cheapest run, and nothing else differs.
  replicate, original = runs['tiny-1-const-8000-replicate'], runs['tiny-1-const-8000']
  assert (replicate.config.train.seed, replicate.config.data.seed) == (1000, 1000)
  replicate.config.train.seed = replicate.config.data.seed = 0
  assert replicate.config.to_dict() == original.config.to_dict()
  assert {n for n in runs if n.endswith('-replicate')} == {
      'tiny-1-const-8000-replicate',
      'mammut_tiny-1-const-8000-replicate',
      'noisy_tiny-1-const-8000-replicate',
  }


def _entry(p_at_max):
  pair = dict(
      a='clip',
      b='mammut',
      p_a_beats_b_at_max=p_at_max,
      p_a_beats_b_at_10x=0.5,
      crossover=dict(point=None, share_crossing=0.1),
      seed_noise='seed noise included',
  )
  return dict(x_max=1e3, pairs=[pair])


def test_a_verdict_needs_ninety_percent_with_seed_noise_in_it():
  (decided,) = report.verdict(_entry(0.05))
  assert decided.startswith('- **mammut** beats clip at the largest compute trained')
  assert 'in 95% of bootstrap replicates (seed noise included)' in decided
  (undecided,) = report.verdict(_entry(0.85))
  assert undecided.startswith('- clip vs mammut: **undecided at this budget**: clip is ahead')
  assert 'in 85% of bootstrap replicates, below the 90%' in undecided
  assert report.decisions(_entry(0.05)) == {'clip vs mammut': 'mammut'}
  assert report.decisions(_entry(0.91)) == {'clip vs mammut': 'clip'}
  assert report.decisions(_entry(0.12)) == {'clip vs mammut': None}


def test_a_seed_replicates_the_same_study():
  base, other = plan.make_runs(plan.QUICK), plan.make_runs(plan.QUICK, seed=3)
  assert [r.name for r in base] == [r.name for r in other]
  for a, b in zip(base, other):
    offset = plan.REPLICATE_SEED_OFFSET if a.name.endswith('-replicate') else 0
    assert (a.config.train.seed, a.config.data.seed) == (offset, offset)
    assert (b.config.train.seed, b.config.data.seed) == (3 + offset, 3 + offset)
    a.config.train.seed = a.config.data.seed = 3 + offset
    assert a.config.to_dict() == b.config.to_dict()  # nothing else differs


@pytest.mark.slow
def test_every_run_is_trained_and_evaluated_into_one_table(study):
  out, _ = study
  runs = plan.make_runs(plan.QUICK)
  results = table.read_results(out / 'results.csv')  # checks the contract's columns
  assert set(results['run_id']) == {r.name for r in runs}
  for run in runs:
    rows = results[results['run_id'] == run.name]
    samples = sorted(set(rows['samples_seen']))
    expected = [int(m) for m in run.config.checkpoint.milestones.split(',')]
    assert samples == expected, run.name
    assert set(rows['model']) == {run.config.model.name}
    assert set(rows['lr_schedule']) == {run.config.optim.schedule}
  # The paper's compute axis: GFLOPs per sample x samples seen.
  np.testing.assert_allclose(
      results['compute_gflops'], results['gflops_per_sample'] * results['samples_seen'], rtol=1e-6
  )
  tasks = set(results['task'])
  assert {'zeroshot_average', 'synthetic/retrieval', 'synthetic/shape'} <= tasks
  accuracy = results[(results['task'] == 'zeroshot_average') & (results['metric'] == 'acc1')]
  assert accuracy['value'].between(0, 1).all()


@pytest.mark.slow
def test_figures_and_report_hold_what_they_claim(study):
  out, first = study
  summary = json.loads((out / 'summary.json').read_text())
  assert summary['failed_runs'] == []
  for figure in summary['figures']:
    with open(figure, 'rb') as file:
      assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    assert os.path.getsize(figure) > 10_000
  report = (out / 'report.md').read_text()
  assert report.startswith(
      '# Mini study on the synthetic world: CLIP vs MaMMUT; CLIP vs CLIP on noisy captions'
  )
  for procedure in plan.DEFAULT_PROCEDURES:
    assert f'| zeroshot_average | {procedure} | E = ' in report
  # The held-out errors listed in the table are the ones the summary averages.
  listed = [float(v) for v in re.findall(r'([+-]\d+\.\d)%', report)]
  assert listed, report
  assert np.mean(np.abs(listed)) / 100 == pytest.approx(
      summary['held_out_mean_abs_relative_error'], abs=1e-3
  )
  # Each comparison has a verdict per metric: a winner with its bootstrap share, or undecided.
  decided = re.findall(r'- \*\*(\w+)\*\* beats (\w+) at the largest compute', report)
  undecided = re.findall(r'- (\w+) vs (\w+): \*\*undecided at this budget\*\*', report)
  pairs = [frozenset(p) for p in decided + undecided]
  assert sorted(pairs, key=sorted) == sorted(
      [frozenset(p) for p in plan.comparisons(plan.DEFAULT_PROCEDURES)] * 2, key=sorted
  )
  # The quick study replicates its cheapest runs: the seed noise is measured and used.
  assert re.search(
      r'- zeroshot_average: \d+\.\d% per run \(\d+ checkpoints with two seeds\)', report
  )
  assert summary['verdicts'].keys() == {'zeroshot_average', 'synthetic/retrieval'}
  assert 'Crossover' in first.stdout


@pytest.mark.slow
def test_rerun_resumes_and_trains_nothing(study):
  out, _ = study
  before = pd.read_csv(out / 'results.csv')
  again = _study(out)
  assert again.returncode == 0, again.stderr[-3000:]
  assert re.findall(r': (\d+) new rows', again.stdout) == ['0'] * len(plan.make_runs(plan.QUICK))
  after = pd.read_csv(out / 'results.csv')
  pd.testing.assert_frame_equal(before, after)


@pytest.mark.slow
def test_workers_exit_when_the_study_is_killed(tmp_path):
  """SIGKILL the study mid-training: its worker processes must not train on for nobody."""
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)
  study = subprocess.Popen(
      [sys.executable, '-m', 'experiments.mini_study', '--out', str(tmp_path), '--quick'],
      cwd=ROOT,
      env=env,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL,
  )
  workers = []
  for _ in range(600):  # wait until both workers have started a run
    time.sleep(0.5)
    workers = _children(study.pid)
    if len(workers) >= 2 and any((tmp_path / 'runs').glob('*/config.json')):
      break
  assert len(workers) >= 2, 'the study did not start its workers'
  study.kill()
  study.wait()
  deadline = time.time() + 30
  while time.time() < deadline and any(_alive(w) for w in workers):
    time.sleep(0.5)
  assert not any(_alive(w) for w in workers)


def _children(pid: int) -> list[int]:
  """Processes whose parent is `pid` (Linux /proc)."""
  out = []
  for entry in os.listdir('/proc'):
    if entry.isdigit():
      try:
        with open(f'/proc/{entry}/stat') as file:
          fields = file.read().rsplit(')', 1)[1].split()
      except OSError:
        continue
      if int(fields[1]) == pid:
        out.append(int(entry))
  return out


def _alive(pid: int) -> bool:
  try:
    with open(f'/proc/{pid}/stat') as file:
      return file.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except OSError:
    return False
