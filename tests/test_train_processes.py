"""The trainer as users run it: real subprocesses killed, preempted and run multi-process."""

import json
import os
import pathlib
import random
import resource
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from scaling_vlm.run import EXIT_INCOMPLETE
from scaling_vlm.train import checkpoints

# Real training subprocesses, killed and resumed: minutes on 2 cores.
pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS, BATCH = 30, 32


def command(workdir, *extra):
  return [
      sys.executable,
      '-m',
      'scaling_vlm.train',
      f'--config={REPO}/configs/clip.py:tiny',
      f'--workdir={workdir}',
      f'--config.train.samples={STEPS * BATCH}',
      f'--config.train.global_batch={BATCH}',
      '--config.train.warmup=64',
      '--config.checkpoint.milestones=320',
      '--config.checkpoint.latest_every_steps=3',
      '--config.log.every_steps=1',
      '--config.log.tensorboard=False',
      *extra,
  ]


def environment(devices=8):
  # tests/conftest.py set the compilation cache for this process; children share it.
  return {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}


def run(workdir, *extra, devices=8, timeout=300):
  result = subprocess.run(
      command(workdir, *extra),
      env=environment(devices),
      timeout=timeout,
      capture_output=True,
      text=True,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def final_params(workdir):
  steps = sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())
  state = checkpoints.read_state(str(workdir / 'checkpoints' / str(steps[-1]) / 'state'))
  return steps[-1], state['params']


def logged_steps(workdir):
  path = workdir / 'metrics.jsonl'
  if not path.exists():
    return []
  return [json.loads(line)['step'] for line in path.read_text().splitlines() if line.strip()]


def wait_for_step(process, workdir, step, timeout=240):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if logged_steps(workdir) and logged_steps(workdir)[-1] >= step:
      return
    assert process.poll() is None, process.stderr.read()[-3000:]
    time.sleep(0.05)
  raise TimeoutError(f'step {step} not reached')


def assert_bit_identical(a, b):
  flat_a = dict(ocp.tree.to_flat_dict(a))
  flat_b = dict(ocp.tree.to_flat_dict(b))
  assert flat_a.keys() == flat_b.keys()
  for key in flat_a:
    np.testing.assert_array_equal(np.asarray(flat_a[key]), np.asarray(flat_b[key]), err_msg=key)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('uninterrupted')
  run(workdir)
  return workdir


def test_sigkill_at_a_random_step_then_resume_is_bit_identical(uninterrupted, tmp_path):
  kill_at = random.Random().randint(4, STEPS - 6)
  process = subprocess.Popen(
      command(tmp_path),
      env=environment(),
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
  )
  wait_for_step(process, tmp_path, kill_at)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert logged_steps(tmp_path)[-1] < STEPS, 'the run finished before it could be killed'
  run(tmp_path)  # the same command resumes
  step, resumed = final_params(tmp_path)
  expected_step, expected = final_params(uninterrupted)
  assert step == expected_step == STEPS
  assert_bit_identical(resumed, expected)
  # The steps after the last checkpoint ran twice, but the log holds each step once, in order:
  # resuming cut it back to the checkpoint.
  assert logged_steps(tmp_path) == logged_steps(uninterrupted)


def test_killed_after_a_parameters_only_milestone_it_starts_over_and_ends_bit_identical(
    uninterrupted, tmp_path
):
  # No rolling checkpoint before the kill: the milestone at step 10 keeps the parameters alone
  # (checkpoint.milestone_state=params), which is nothing to resume from.
  no_rolling = '--config.checkpoint.latest_every_steps=1000'
  process = subprocess.Popen(
      command(tmp_path, no_rolling),
      env=environment(),
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
  )
  milestone = tmp_path / 'checkpoints' / '10'
  deadline = time.time() + 240
  while not milestone.is_dir():  # orbax renames the step folder into place once it is complete
    assert process.poll() is None and time.time() < deadline, process.stderr.read()[-3000:]
    time.sleep(0.01)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert logged_steps(tmp_path)[-1] < STEPS, 'the run finished before it could be killed'
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps == [10] and not (milestone / 'data').exists()
  run(tmp_path, no_rolling)  # starts over, and passes the milestone it has already
  step, resumed = final_params(tmp_path)
  assert step == STEPS
  assert_bit_identical(resumed, final_params(uninterrupted)[1])
  assert logged_steps(tmp_path) == logged_steps(uninterrupted)


def test_sigterm_saves_and_exits_cleanly(tmp_path):
  process = subprocess.Popen(
      command(tmp_path, '--config.checkpoint.latest_every_steps=1000'),
      env=environment(),
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
  )
  wait_for_step(process, tmp_path, 12)
  sent = time.time()
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=30) == EXIT_INCOMPLETE  # saved, but not done: run it again
  assert time.time() - sent < 30
  step, _ = final_params(tmp_path)
  # Neither a milestone (10, 30) nor a periodic save: the preemption checkpoint.
  assert step == logged_steps(tmp_path)[-1] and step not in (10, STEPS)


def free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_agree_with_one(uninterrupted, tmp_path):
  port = free_port()
  processes = [
      subprocess.Popen(
          command(
              tmp_path, f'--coordinator=localhost:{port}', '--num_processes=2', f'--process_id={i}'
          ),
          env=environment(devices=4),
          stdout=subprocess.DEVNULL,
          stderr=subprocess.PIPE,
          text=True,
      )
      for i in range(2)
  ]
  for process in processes:
    assert process.wait(timeout=400) == 0, process.stderr.read()[-3000:]
  single = {
      json.loads(l)['step']: json.loads(l)
      for l in (uninterrupted / 'metrics.jsonl').read_text().splitlines()
  }
  multi = {
      json.loads(l)['step']: json.loads(l)
      for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()
  }
  assert sorted(multi) == sorted(single)
  for step in single:
    assert multi[step]['train/loss'] == pytest.approx(single[step]['train/loss'], abs=1e-4)
  _, a = final_params(tmp_path)
  _, b = final_params(uninterrupted)
  flat_a, flat_b = dict(ocp.tree.to_flat_dict(a)), dict(ocp.tree.to_flat_dict(b))
  # Adam moves each weight by about lr per step whatever the gradient's size, so float-level
  # differences in near-zero gradients show up as ~lr-sized differences; 1e-3 is half of the
  # peak LR (2e-3), far below what a wrong shard or batch would give.
  for key in flat_a:
    np.testing.assert_allclose(np.asarray(flat_a[key]), np.asarray(flat_b[key]), atol=1e-3)


def test_unknown_override_is_a_clear_error(tmp_path):
  result = subprocess.run(
      command(tmp_path, '--config.optim.learning_rate=1e-3'),
      env=environment(),
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert result.returncode != 0
  assert "Unknown config key 'optim.learning_rate'. Did you mean optim.lr" in result.stderr
  assert not (tmp_path / 'checkpoints').exists()  # rejected before anything started


def test_sigterm_while_the_run_is_starting_still_ends_it_as_incomplete(tmp_path):
  process = subprocess.Popen(
      command(tmp_path), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
  )
  time.sleep(3)  # importing, checking, compiling: the handler is in from the first moment
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=120) == EXIT_INCOMPLETE, process.stderr.read()[-3000:]
  assert final_params(tmp_path)[0] == logged_steps(tmp_path)[-1] < STEPS


def test_a_second_trainer_on_a_workdir_exits_at_once_naming_the_first(tmp_path):
  first = subprocess.Popen(
      command(tmp_path), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
  )
  wait_for_step(first, tmp_path, 1)
  second = subprocess.run(
      command(tmp_path), env=environment(), capture_output=True, text=True, timeout=120
  )
  assert first.wait(timeout=240) == 0
  assert second.returncode == 1
  last = second.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: {tmp_path} is in use by another trainer (host ')
  assert f'pid {first.pid})' in last and 'Traceback' not in second.stderr
  assert logged_steps(tmp_path) == list(range(1, STEPS + 1))  # one trainer's rows, once each


@pytest.mark.parametrize(
    'flag, message',
    [
        ('--config.optim.lr=-1', 'optim.lr=-1.0 is not allowed; it must be > 0.'),
        ('--config.optim.learning_rate=1', "Unknown config key 'optim.learning_rate'."),
        ('--config.log.every_steps=0', 'log.every_steps=0 is not allowed; it must be >= 1'),
        ('--config.data.source=wds', "data.source='wds' needs data.shards"),
    ],
)
def test_a_bad_config_is_one_line_and_writes_nothing(tmp_path, flag, message):
  out = subprocess.run(
      command(tmp_path / 'run', flag), env=environment(), capture_output=True, text=True
  )
  assert out.returncode == 2
  assert out.stderr.strip().splitlines()[-1].startswith(f'error: {message}'), out.stderr
  assert 'Traceback' not in out.stderr and not (tmp_path / 'run').exists()


def _full_disk():
  """In the child: files can no longer grow past 64 kB (EFBIG, as ENOSPC on a full disk)."""
  resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_full_disk_stops_the_run_at_once_and_resuming_is_bit_identical(uninterrupted, tmp_path):
  first = subprocess.Popen(
      command(tmp_path), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
  )
  wait_for_step(first, tmp_path, 4)  # the rolling checkpoint at step 3 is on its way
  first.send_signal(signal.SIGTERM)
  assert first.wait(timeout=60) == EXIT_INCOMPLETE
  saved, _ = final_params(tmp_path)
  env = {k: v for k, v in environment().items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  full = subprocess.run(
      command(tmp_path),
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
      preexec_fn=_full_disk,
  )
  assert full.returncode == 1
  last = full.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: a checkpoint could not be written in {tmp_path}/checkpoints')
  assert 'File too large (errno 27' in last and f'(steps [{saved}]) are intact' in last
  assert 'Traceback' not in full.stderr
  assert logged_steps(tmp_path)[-1] < STEPS  # it stopped, instead of training on
  assert final_params(tmp_path)[0] == saved  # the last good checkpoint is intact
  run(tmp_path)  # space is free again: the same command resumes
  step, resumed = final_params(tmp_path)
  assert step == STEPS
  assert_bit_identical(resumed, final_params(uninterrupted)[1])
