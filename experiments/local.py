"""The local backend: each run a `python -m scaling_vlm.train` subprocess on this machine,
one after another or N at once, its output appended to SWEEP_DIR/<run>/train.log.

Finished runs are skipped; started ones resume (the trainer continues from the workdir's
latest checkpoint); a cooldown branch waits until its parent has saved the checkpoint it
branches from. A failed run is reported with its log and the others go on. SIGTERM or Ctrl-C
stops starting runs and passes SIGTERM on, so each running trainer saves and exits.

On a multi-host TPU slice every host runs this same launcher over a shared SWEEP_DIR: each
run's processes form one JAX program, and every host takes the same skip/run decisions.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from experiments import workdirs
from experiments.sweep import REPO
from scaling_vlm.run import EXIT_INCOMPLETE, Workdir

TRAINED, SKIPPED, FAILED, INCOMPLETE, BLOCKED, CONFLICT = (
    'trained',
    'skipped',
    'failed',
    'incomplete',
    'blocked',
    'conflict',
)
PROBLEMS = (FAILED, INCOMPLETE, BLOCKED, CONFLICT)


@dataclasses.dataclass
class Outcome:
  name: str
  status: str
  detail: str = ''
  log: str = ''


def command(
    planned, workdir: str, python: str = sys.executable, env: Mapping[str, str] | None = None
) -> list[str]:
  """The run's trainer command; `env` (the sweep's environment) goes first as `env NAME=VALUE`,
  so the command carries it wherever it runs (here, srun on a SLURM node) and shows it."""
  train = [python, '-m', 'scaling_vlm.train', *planned.flags, f'--workdir={workdir}']
  return ['env', *(f'{k}={v}' for k, v in env.items()), *train] if env else train


class _Stop:
  """SIGTERM/SIGINT: start nothing more, let running trainers checkpoint and exit."""

  def __init__(self):
    self.requested = False
    self.forwarded = False
    self._previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: no signal handling
        pass

  def _handle(self, signum, frame):
    self.requested = True

  def restore(self):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def launch(
    planned: list,
    sweep_dir: str,
    parallel: int = 1,
    log_name: str = 'train.log',
    dry_run: bool = False,
    poll_s: float = 0.2,
    echo=print,
    env: Mapping[str, str] | None = None,
) -> list[Outcome]:
  """Runs what is not finished; returns one Outcome per run, in sweep order. `env` is set in
  every run's command (experiments.launch's SWEEP_ENV and --env)."""
  if parallel < 1:
    raise ValueError(f'--parallel={parallel} must be at least 1.')
  sweep_dir = os.path.abspath(sweep_dir)
  workdir = {p.name: os.path.join(sweep_dir, p.name) for p in planned}
  by_name = {p.name: p for p in planned}
  outcomes: dict[str, Outcome] = {}
  pending = []
  for p in planned:
    state = workdirs.state(p, workdir[p.name])
    if state == workdirs.DONE:
      outcomes[p.name] = Outcome(p.name, SKIPPED, 'already finished')
    elif state == workdirs.CONFLICT:
      keys = ', '.join(Workdir(workdir[p.name]).config_conflicts(p.config))
      outcomes[p.name] = Outcome(
          p.name, CONFLICT, f'{workdir[p.name]} holds a run with another config ({keys})'
      )
    else:
      pending.append(p)
  if dry_run:
    for p in pending:
      echo(f'would run {p.name}: {shlex.join(command(p, workdir[p.name], env=env))}')
    return [outcomes.get(p.name, Outcome(p.name, 'pending')) for p in planned]

  running: dict[str, tuple[subprocess.Popen, object]] = {}
  stop = _Stop()
  try:
    while pending or running:
      started = _start_ready(
          pending, running, outcomes, workdir, parallel, log_name, stop, echo, env
      )
      finished = _reap(running, outcomes, by_name, workdir, log_name, echo)
      if stop.requested and running and not stop.forwarded:
        echo(f'stopping: SIGTERM to {len(running)} running trainer(s); they save and exit')
        for process, _ in running.values():
          process.send_signal(signal.SIGTERM)
        stop.forwarded = True
      if stop.requested and not running:
        for p in pending:
          outcomes[p.name] = Outcome(p.name, INCOMPLETE, 'not started: the launcher was stopped')
        pending.clear()
      if not (started or finished):
        time.sleep(poll_s)
  finally:
    stop.restore()
  return [outcomes[p.name] for p in planned]


def _start_ready(pending, running, outcomes, workdir, parallel, log_name, stop, echo, env):
  started = False
  for p in list(pending):
    if stop.requested or len(running) >= parallel:
      break
    parent = p.run.parent
    if parent:
      # The parent's workdir even when --only left the parent out of this launch.
      parent_dir = os.path.join(os.path.dirname(workdir[p.name]), parent)
      if p.plan.cooldown_start not in Workdir(parent_dir).saved_steps():
        if parent in running or any(q.name == parent for q in pending):
          continue  # the parent has not reached the branch point yet
        why = outcomes.get(parent)
        outcomes[p.name] = Outcome(
            p.name,
            BLOCKED,
            f'parent {parent} has no checkpoint at {p.plan.start_samples} samples'
            + (f' ({why.status})' if why else ''),
        )
        pending.remove(p)
        continue
    pending.remove(p)
    os.makedirs(workdir[p.name], exist_ok=True)
    log_path = os.path.join(workdir[p.name], log_name)
    log = open(log_path, 'a')
    cmd = command(p, workdir[p.name], env=env)
    log.write(f'# {time.strftime("%Y-%m-%d %H:%M:%S")} {shlex.join(cmd)}\n')
    log.flush()
    # The run's own session: a terminal's Ctrl-C reaches the launcher, which forwards SIGTERM.
    process = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, 'PYTHONUNBUFFERED': '1'},  # the log follows the run as it goes
    )
    running[p.name] = (process, log)
    echo(f'start {p.name} -> {log_path}')
    started = True
  return started


def _reap(running, outcomes, by_name, workdir, log_name, echo):
  finished = False
  for name, (process, log) in list(running.items()):
    code = process.poll()
    if code is None:
      continue
    log.close()
    del running[name]
    finished = True
    log_path = os.path.join(workdir[name], log_name)
    done = by_name[name].plan.total_steps in Workdir(workdir[name]).saved_steps()
    if code == 0 and done:
      outcome = Outcome(name, TRAINED, log=log_path)
    elif code in (0, EXIT_INCOMPLETE):
      outcome = Outcome(name, INCOMPLETE, 'stopped before its last step (SIGTERM?)', log_path)
    else:
      outcome = Outcome(name, FAILED, f'exit status {code}: {_last_line(log_path)}', log_path)
    outcomes[name] = outcome
    echo(f'{outcome.status} {name}' + (f': {outcome.detail}' if outcome.detail else ''))
  return finished


def _last_line(path: str) -> str:
  """The error a failed trainer printed last (its traceback's final line)."""
  with open(path, errors='replace') as file:
    lines = [line.strip() for line in file.read()[-20000:].splitlines() if line.strip()]
  return lines[-1][:300] if lines else '(empty log)'
