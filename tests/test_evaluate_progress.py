"""Evaluation reports as it goes: a line per run, checkpoint and task with an ETA where the
output is not a terminal, a bar redrawn in place where it is; and no library warnings."""

import io
import os
import subprocess
import sys

from configs import presets
from scaling_vlm import convert, models, run as run_lib
from scaling_vlm.convert import runs
from scaling_vlm.evaluate import progress as progress_lib

SMALL = ['--synthetic_size', '16', '--batch_size', '16']


class Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def planned(live=False):
  clock, stream = Clock(), io.StringIO()
  report = progress_lib.Progress(stream, live=live, clock=clock)
  for samples in (160, 320):
    report.plan(f'run @ {samples} samples', ['shape', 'retrieval'], 'run')
  return report, clock, stream


def test_each_line_counts_the_units_and_estimates_from_the_times_seen():
  report, clock, stream = planned()
  clock.now = 5.0
  report.read('run @ 160 samples', 5.0)
  clock.now = 15.0
  report.finished('run @ 160 samples', 'shape', 10.0, {'acc1': 0.25, 'tasks': 4})
  clock.now = 35.0
  report.finished('run @ 160 samples', 'retrieval', 20.0, {'recall@1': 0.5})
  lines = stream.getvalue().splitlines()
  assert lines[0] == '[0/4 tasks, 0:00:05 elapsed, ETA ?] run @ 160 samples: checkpoint read' + (
      ' in 5.0 s; 2 tasks to run'
  )
  assert lines[1] == (
      '[1/4 tasks, 0:00:15 elapsed, ETA 0:00:35] run @ 160 samples: shape acc1 0.2500 tasks 4'
      ' (10.0 s)'
  )  # 3 tasks at 10 s (retrieval, not seen yet, at the mean of those seen) and a 5 s read
  # Retrieval took 20 s: the next checkpoint's shape 10 s, retrieval 20 s, its read 5 s.
  assert lines[2].startswith('[2/4 tasks, 0:00:35 elapsed, ETA 0:00:35] run @ 160 samples: ')


def test_what_will_not_run_leaves_the_total_and_the_estimate():
  report, clock, stream = planned()
  report.read('run @ 160 samples', 5.0)
  report.finished('run @ 160 samples', 'shape', 10.0, {})
  report.dropped('run @ 160 samples', 'retrieval', 'FileNotFoundError: no such folder')
  assert report.total == 3 and report.eta() == 5.0 + 2 * 10.0
  assert 'run @ 160 samples: retrieval SKIPPED: FileNotFoundError' in stream.getvalue()
  report.forget(['run @ 320 samples'], 'retrieval')  # its data will not load there either
  assert report.total == 2 and report.eta() == 5.0 + 10.0
  report.dropped('run @ 320 samples', None, 'ValueError: damaged')
  assert report.total == 1 and report.eta() == 0.0


def test_on_a_terminal_the_bar_is_redrawn_below_each_line_and_cleared_at_the_end(monkeypatch):
  monkeypatch.setenv('COLUMNS', '200')
  report, clock, stream = planned(live=True)
  report.now('run @ 160 samples: shape')
  report.read('run @ 160 samples', 5.0)
  report.finished('run @ 160 samples', 'shape', 10.0, {'acc1': 0.25})
  report.close()
  out = stream.getvalue()
  # Lines end with a newline, each after clearing the bar; the bar never does.
  assert '\r\x1b[Krun @ 160 samples: shape acc1 0.2500 (10.0 s)\n' in out
  bars = [part for part in out.split('\r\x1b[K') if part.startswith('[')]
  assert bars and not any('\n' in bar for bar in bars)
  assert bars[-1].startswith('[######------------------] 1/4 tasks')
  assert bars[-1].endswith('| run @ 160 samples: shape')
  assert out.endswith('\r\x1b[K')

  monkeypatch.setenv('COLUMNS', '40')  # a narrow terminal: the bar is cut, not wrapped
  report.now('run @ 320 samples: shape')
  assert len(stream.getvalue().rpartition('\r\x1b[K')[2]) == 39


def fake_run(workdir, tensorboard=True):
  """A tiny CLIP run with milestone checkpoints at steps 10 and 20 (160 and 320 samples), the
  parameters of two differently seeded models: no training needed to evaluate it."""
  config = presets.make('clip', 'tiny-1')
  config.train.global_batch, config.train.samples, config.train.warmup = 16, '320', '32'
  config.checkpoint.milestones = '160,320'
  config.log.tensorboard = tensorboard
  folder = run_lib.Workdir(str(workdir))
  folder.write_config(config)
  for step in (10, 20):
    flat = convert.flat_params(models.build('tiny-1', seed=step))
    step_dir = os.path.join(folder.checkpoints, str(step))
    runs.save_params(flat, os.path.join(step_dir, 'state'))
    # Where the trainer's checkpoint manager keeps it: beside `state`, not in it.
    os.replace(*(os.path.join(step_dir, d, '_CHECKPOINT_METADATA') for d in ('state', '')))
  return str(workdir)


def test_the_command_reports_each_checkpoint_and_task_and_no_library_warnings(tmp_path):
  workdir = fake_run(tmp_path / 'tiny')
  tasks = ['--tasks', 'synthetic/shape', 'synthetic/retrieval']
  command = [sys.executable, '-m', 'scaling_vlm.evaluate', '--workdir', workdir, *tasks, *SMALL]
  done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr
  lines = done.stdout.splitlines()
  assert '] tiny: 4 (checkpoint, task) pairs to evaluate at 2 milestone checkpoints' in lines[0]
  for samples in (160, 320):
    for event in ('checkpoint read in', 'synthetic/shape acc1', 'synthetic/retrieval text_'):
      (line,) = [l for l in lines if f'tiny @ {samples} samples: {event}' in l]
      assert ' tasks, ' in line and ' elapsed, ETA ' in line
  assert lines[-1].startswith(f'{2 * (3 + 6 + 4)} rows written; 0 (checkpoint, task) pairs')
  # Orbax's metadata warning came once per checkpoint; TFDS and JAX have nothing to say here.
  assert 'Metadata file does not exist' not in done.stderr
  assert 'WARNING' not in done.stderr, done.stderr
