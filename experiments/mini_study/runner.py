"""Train and evaluate the study's runs, two at a time on a two-core machine.

Each run goes to a worker process that trains it with the project's trainer and then
evaluates every milestone into the run's `results.csv`, exactly as `python -m
scaling_vlm.train` and `python -m scaling_vlm.evaluate` would. A tiny model's ops are too
small to keep two cores busy, so the study trains two runs at a time instead. Workers persist
between runs (jax is imported once each) and share a persistent XLA compilation cache, so a
resumed study mostly loads what it compiled before.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence

from experiments import workdirs
from scaling_vlm.run import Workdir

HEARTBEAT_S = 30  # a progress line at least this often
TIMES_FILE = 'study_seconds.json'  # a run's training and evaluation time, over all invocations
EVAL_TASKS = ('synthetic/shape', 'synthetic/colour', 'synthetic/count', 'synthetic/retrieval')


@dataclasses.dataclass(frozen=True)
class Outcome:
  name: str
  train_s: float  # seconds spent on the run in this and earlier invocations of the study
  eval_s: float
  rows: int  # evaluation rows added by this invocation
  error: str | None = None


def _init_worker(study: int, cache_dir: str) -> None:
  # The study's pid comes from the study: read here with os.getppid(), it is already 1 in a
  # worker that was still starting when the study was killed, and that worker trained on.
  threading.Thread(target=_exit_with_parent, args=(study,), daemon=True).start()
  import jax  # pylint: disable=import-outside-toplevel

  jax.config.update('jax_compilation_cache_dir', cache_dir)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  # The trainer's and orbax's per-step logs would bury the study's own progress lines.
  logging.getLogger().setLevel(logging.WARNING)
  logging.getLogger('absl').setLevel(logging.ERROR)


def _exit_with_parent(parent: int) -> None:
  """A worker outlives a killed study otherwise, training on for nobody."""
  while os.getppid() == parent:
    time.sleep(1)
  os._exit(1)  # pylint: disable=protected-access


def _train_and_evaluate(name: str, config, train: bool, workdir: str, eval_size: int) -> Outcome:
  from scaling_vlm.evaluate import milestones  # pylint: disable=import-outside-toplevel
  from scaling_vlm.train import trainer  # pylint: disable=import-outside-toplevel

  spent = _read_times(workdir)  # what earlier invocations spent on this run
  start = time.perf_counter()
  try:
    if train:
      trainer.train(config, workdir)  # resumes from the workdir if a checkpoint is there
    train_s = time.perf_counter() - start
    summary = milestones.evaluate_run(workdir, EVAL_TASKS, synthetic_size=eval_size)
  except Exception as error:  # one failed run must not stop the study
    return Outcome(name, time.perf_counter() - start, 0.0, 0, f'{type(error).__name__}: {error}')
  eval_s = time.perf_counter() - start - train_s
  spent = {'train_s': spent['train_s'] + train_s, 'eval_s': spent['eval_s'] + eval_s}
  with open(os.path.join(workdir, TIMES_FILE), 'w') as file:
    json.dump(spent, file)
  skipped = [line for line in summary.lines() if line.startswith('SKIPPED')]
  return Outcome(name, spent['train_s'], spent['eval_s'], summary.rows, '; '.join(skipped) or None)


def _read_times(workdir: str) -> dict[str, float]:
  path = os.path.join(workdir, TIMES_FILE)
  if not os.path.exists(path):
    return {'train_s': 0.0, 'eval_s': 0.0}
  with open(path) as file:
    return json.load(file)


def run_all(
    runs: Sequence,
    out: str,
    eval_size: int,
    workers: int,
    on_done: Callable[[Outcome], None],
    on_heartbeat: Callable[[dict[str, tuple[int, int]]], None],
) -> list[Outcome]:
  """Trains and evaluates `runs` (largest first, so no long run starts last), calling
  `on_done` as each finishes and `on_heartbeat` with the unfinished runs' positions when
  none has finished for a while; returns the outcomes in the order of `runs`."""
  context = multiprocessing.get_context('spawn')  # jax is not fork-safe
  cache = os.environ.get('JAX_COMPILATION_CACHE_DIR') or os.path.join(out, '.xla_cache')
  order = sorted(runs, key=lambda r: -r.train_flops)  # sweep.Planned runs
  with concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(), cache)
  ) as pool:
    outcomes, futures = {}, {}
    for r in order:
      workdir = os.path.join(out, 'runs', r.name)
      state = workdirs.state(r, workdir)  # as the launcher decides: done, partial, new
      if state == workdirs.CONFLICT:
        changed = ', '.join(Workdir(workdir).config_conflicts(r.config))
        outcomes[r.name] = Outcome(
            r.name,
            0.0,
            0.0,
            0,
            f'{workdir} holds a run with another config ({changed}); '
            'the study changed since it was started: use a new --out',
        )
        on_done(outcomes[r.name])
        continue
      train = state != workdirs.DONE
      futures[pool.submit(_train_and_evaluate, r.name, r.config, train, workdir, eval_size)] = r
    pending = set(futures)
    while pending:
      finished, pending = concurrent.futures.wait(
          pending, timeout=HEARTBEAT_S, return_when=concurrent.futures.FIRST_COMPLETED
      )
      for future in finished:
        outcome = future.result()
        outcomes[outcome.name] = outcome
        on_done(outcome)
      if not finished:
        on_heartbeat(_positions(out, [r for r in order if r.name not in outcomes]))
  return [outcomes[r.name] for r in runs]


def _positions(out: str, runs: Sequence) -> dict[str, tuple[int, int]]:
  """(samples seen, samples) of the runs that have started, from their metrics logs."""
  positions = {}
  for r in runs:
    path = os.path.join(out, 'runs', r.name, 'metrics.jsonl')
    if os.path.exists(path):
      with open(path) as file:
        lines = file.read().splitlines()
      if lines:
        positions[r.name] = (
            json.loads(lines[-1]).get('data/samples_seen', 0),
            r.plan.total_samples,
        )
  return positions
