"""The launcher with real training subprocesses on tiny synthetic runs: a sweep runs to the
end with one failing run reported, a second launch does nothing, an unfinished run resumes,
a cooldown branch waits for its parent, and collection merges every run's rows into the table
fitting reads."""

import os
import pathlib
import shlex
import subprocess
import sys

import pytest

from experiments import collect, launch
from fitting import table
from scaling_vlm.run import Workdir

# Real training subprocesses launched as a sweep: minutes on 2 cores.
pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]
# One CPU device per trainer: the tiny runs compile and start fastest (conftest sets 8).
ONE_DEVICE = '--xla_force_host_platform_device_count=1'
SHARED = (
    "'train.global_batch': 16, 'train.warmup': 16, 'log.tensorboard': False, "
    "'checkpoint.async_save': False"
)
SWEEP = f"""
from experiments.sweep import Run

def runs():
  yield Run('const', 'configs/clip.py:tiny-1', {{'train.samples': 128, {SHARED},
            'optim.schedule': 'const', 'checkpoint.milestones': '64,128'}})
  yield Run('cool', 'configs/clip.py:tiny-1', {{'train.samples': 96, {SHARED},
            'optim.schedule': 'cooldown', 'cooldown.start': 64}}, parent='const')
  # Passes the sweep checks, fails in the trainer: one device does not split 3 ways.
  yield Run('broken', 'configs/clip.py:tiny-1', {{'train.samples': 64, {SHARED},
            'mesh.fsdp': 3}})
"""


@pytest.fixture(scope='module')
def swept(tmp_path_factory):
  """The sweep launched once, two runs at a time; (sweep file, sweep dir, exit status, output)."""
  root = tmp_path_factory.mktemp('sweep')
  path = root / 'sweep.py'
  path.write_text(SWEEP)
  out = root / 'out'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.launch', str(path), '--out', str(out), '--parallel', '2'],
      cwd=REPO,
      env={**os.environ, 'XLA_FLAGS': ONE_DEVICE},
      capture_output=True,
      text=True,
      timeout=300,
  )
  return str(path), out, result.returncode, result.stdout + result.stderr


def steps(workdir):
  return sorted(Workdir(str(workdir)).saved_steps())


def test_a_failing_run_is_reported_and_the_others_finish(swept):
  _, out, code, output = swept
  assert code == 1, output
  assert steps(out / 'const') == [4, 8]
  assert steps(out / 'cool') == [6]  # branched at step 4, cooled down to 96 samples
  assert 'Cooldown branch of' in (out / 'cool' / 'train.log').read_text()
  log = out / 'broken' / 'train.log'
  # The mesh cannot be built: a bad config, refused in one line with exit status 2.
  assert 'FAILED broken: exit status 2' in output and f'(log: {log})' in output
  assert 'summary: ' in output and '2 trained' in output and '1 failed' in output


def test_a_second_launch_does_nothing(swept, capsys):
  path, out, _, _ = swept
  logs = {run: (out / run / 'train.log').stat().st_mtime_ns for run in ('const', 'cool')}
  # Without the broken run: everything is finished, so nothing starts and the status is 0.
  assert launch.main([path, '--out', str(out), '--only', 'const', 'cool']) == 0
  output = capsys.readouterr().out
  assert 'summary: 2 skipped' in output and 'start ' not in output
  assert {run: (out / run / 'train.log').stat().st_mtime_ns for run in logs} == logs
  # A dry run names what a launch would start: only the unfinished (failed) run.
  assert launch.main([path, '--out', str(out), '--dry-run']) == 0
  would = [l for l in capsys.readouterr().out.splitlines() if l.startswith('would run')]
  assert len(would) == 1 and would[0].startswith('would run broken: ')
  assert f'--workdir={out}/broken' in shlex.split(would[0])


def test_an_unfinished_run_resumes_from_its_checkpoint(swept, capsys, monkeypatch):
  path, out, _, _ = swept
  monkeypatch.setenv('XLA_FLAGS', ONE_DEVICE)  # the trainers started from here inherit it
  # As if the run had been killed after its milestone: the final checkpoint is gone.
  final = out / 'const' / 'checkpoints' / '8'
  subprocess.run(['rm', '-rf', str(final)], check=True)
  assert launch.main([path, '--out', str(out), '--only', 'const', 'cool']) == 0
  output = capsys.readouterr().out
  assert 'start const' in output and 'trained const' in output and 'start cool' not in output
  assert steps(out / 'const') == [4, 8]
  log = (out / 'const' / 'train.log').read_text()
  assert log.count('scaling_vlm.train') == 2  # the log holds both launches
  assert 'Resumed' in log and 'at step 4' in log


def test_a_changed_run_is_not_mistaken_for_the_finished_one(swept, tmp_path, capsys):
  path, out, _, _ = swept
  changed = tmp_path / 'changed.py'
  changed.write_text(pathlib.Path(path).read_text().replace("'64,128'", "'64,128', 'data.seed': 1"))
  assert launch.main([str(changed), '--out', str(out), '--only', 'const']) == 1
  output = capsys.readouterr().out
  assert 'CONFLICT const' in output and '(data.seed)' in output


def test_collect_merges_every_run_into_the_table_fitting_reads(swept):
  _, out, _, _ = swept
  merged = out / 'merged.csv'
  status = collect.main(
      [
          str(out),
          '--tasks',
          'synthetic/shape',
          '--synthetic_size',
          '16',
          '--batch_size',
          '16',
          '--out',
          str(merged),
      ]
  )
  assert status == 0
  frame = table.read_results(merged)
  # Every milestone of the finished runs, and the broken run (no checkpoint) adds nothing.
  seen = set(zip(frame.run_id, frame.samples_seen))
  assert seen == {('const', 64), ('const', 128), ('cool', 96)}
  assert set(frame.lr_schedule) == {'const', 'cooldown'}
  cool = frame[frame.run_id == 'cool']
  assert set(cool.cooldown_from) == {'const@64'}
  # A second collection only merges: the rows are not duplicated.
  assert collect.main([str(out), '--no-eval', '--out', str(merged)]) == 0
  assert len(table.read_results(merged)) == len(frame)
