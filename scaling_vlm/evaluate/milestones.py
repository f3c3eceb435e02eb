"""Evaluation of every milestone checkpoint of a run into its results table.

For each milestone on disk, the tasks without rows yet are run and their rows appended, so a
second call adds nothing and an interrupted one resumes at the first missing
(checkpoint, task). The model is built once per run and each checkpoint's parameters are
loaded into it, so the jitted embedding programs compile once per run. Parameters are read
straight into their layout on the evaluation mesh (`mesh`, `restore`): replicated by default,
split over `fsdp` devices for models too big for one; each batch is split over the batch axes.
A checkpoint that cannot be read, or a task that fails, is recorded as skipped with the reason;
the rest goes on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx

from scaling_vlm import models, run as run_lib
from scaling_vlm.data import sources
from scaling_vlm.evaluate import mesh as mesh_lib
from scaling_vlm.evaluate import restore
from scaling_vlm.evaluate import results as results_lib
from scaling_vlm.evaluate import tasks as tasks_lib

log = logging.getLogger(__name__)

AVERAGE_TASK = 'zeroshot_average'
AVERAGED_METRICS = ('acc1', 'acc5', 'mean_per_class_recall')


@dataclasses.dataclass
class Summary:
  """What one call did: rows written, (checkpoint, task) pairs already present, and what was
  skipped with why (`samples_seen` None: every checkpoint of the run)."""

  rows: int = 0
  present: int = 0
  pending: int = 0  # milestones a run has not saved yet
  skipped: list[tuple[str, int | None, str, str]] = dataclasses.field(default_factory=list)

  def skip(self, workdir: str, samples: int | None, what: str, error: BaseException) -> None:
    reason = f'{type(error).__name__}: {error}'
    log.error('%s @ %s: %s skipped: %s', workdir, samples, what, reason)
    self.skipped.append((workdir, samples, what, reason))

  def lines(self) -> list[str]:
    out = [
        f'{self.rows} rows written; {self.present} (checkpoint, task) pairs already present;'
        f' {self.pending} milestones not saved yet'
    ]
    for workdir, samples, what, reason in self.skipped:
      where = 'all checkpoints' if samples is None else f'{samples} samples'
      out.append(f'SKIPPED {workdir} [{where}] {what}: {reason}')
    return out


def milestone_steps(run: run_lib.Run) -> list[int]:
  """The run's milestone steps that have a checkpoint on disk (a running run has fewer)."""
  saved = run.workdir.saved_steps()
  return [step for step in run.plan.milestone_steps if step in saved]


def evaluate_run(
    workdir: str,
    specs: Sequence[str] = tasks_lib.DEFAULT_TASKS,
    *,
    synthetic_size: int = 1000,
    batch_size: int = 256,
    dataset: str | None = None,
    summary: Summary | None = None,
    mesh: str = mesh_lib.DEFAULT,
) -> Summary:
  """Evaluates every milestone checkpoint of the run in `workdir` on the tasks `specs` name
  (see `tasks`), appending rows to `workdir/results.csv`; `mesh` as `--mesh` (see `mesh`)."""
  run = _Run(workdir, specs, synthetic_size, batch_size, dataset, summary or Summary(), mesh)
  steps = milestone_steps(run.info.run)
  run.summary.pending += len(run.info.plan.milestone_steps) - len(steps)
  with jax.set_mesh(run.mesh):
    for step in steps:
      run.evaluate(step)
  return run.summary


class _Run:
  """One run's evaluation: its table, tasks, tokenizer and the model checkpoints load into."""

  def __init__(self, workdir, specs, synthetic_size, batch_size, dataset, summary, mesh):
    self.workdir, self.summary = workdir, summary
    run = run_lib.Run.load(workdir)
    config = run.config
    self.info = results_lib.RunInfo(run, dataset)
    self.arch = run.model
    self.tokenizer = sources.make_tokenizer(config.data, self.arch.text)
    self.image_size = self.arch.vision.image_size
    self.tasks = tasks_lib.make_tasks(
        specs, self.image_size, synthetic_size, captions=self.arch.spec.captions
    )
    self.table = results_lib.ResultsFile(run.workdir.results)
    self.mesh = mesh_lib.make(mesh_lib.parse(mesh, config.get('mesh')))
    self.batch_size = batch_size  # rounded to whole rows per device where batches are made
    self.failed_loads: set[str] = set()
    # Abstract until the first checkpoint is read: no parameters are initialised, anywhere.
    self.graphdef, self.abstract = nnx.split(models.abstract(self.arch))
    self.model = None

  def evaluate(self, step: int) -> None:
    """The tasks without rows at this checkpoint, then the suite average."""
    run_id, samples = self.info.columns['run_id'], step * self.info.plan.global_batch
    todo = [t for t in self.tasks if not self.table.has(run_id, samples, t.name)]
    self.summary.present += len(self.tasks) - len(todo)
    todo = [t for t in todo if t.name not in self.failed_loads]
    if not todo:
      return
    state = os.path.join(self.info.run.workdir.checkpoints, str(step), 'state')
    try:
      self._load(state)
    except Exception as error:  # orbax raises many kinds for a damaged directory
      self.summary.skip(self.workdir, samples, f'checkpoint {state}', error)
      return
    for task in todo:
      start = time.perf_counter()
      try:
        task.data  # loads once per run; a missing dataset fails every checkpoint alike
      except Exception as error:
        self.failed_loads.add(task.name)
        self.summary.skip(self.workdir, None, f'task {task.name}', error)
        continue
      try:
        metrics, captions = task.run(self.model, self.tokenizer, self.image_size, self.batch_size)
      except Exception as error:
        self.summary.skip(self.workdir, samples, f'task {task.name}', error)
        continue
      # Captions first: the rows mark the task done, so a crash between the two repeats it.
      _write_captions(self.workdir, run_id, samples, task.name, captions)
      self.table.append(self.info.rows(step, task.name, metrics))
      self.summary.rows += len(metrics)
      elapsed = time.perf_counter() - start
      log.info('%s @ %d: %s %s (%.1fs)', run_id, samples, task.name, metrics, elapsed)
    zero_shot = [t for t in self.tasks if t.kind == tasks_lib.ZERO_SHOT]
    self.summary.rows += _average(self.table, self.info, step, zero_shot)

  def _load(self, state_dir: str) -> None:
    """The checkpoint's parameters into the run's model, in their layout on the mesh."""
    state = restore.params(self.abstract, state_dir, self.mesh)
    if self.model is None:
      self.model = nnx.merge(self.graphdef, state)
    else:
      nnx.update(self.model, state)


def _write_captions(workdir: str, run_id: str, samples: int, task: str, captions: list) -> None:
  """Generated captions go next to the numbers, one JSON line each."""
  if not captions:
    return
  with open(run_lib.Workdir(workdir).captions, 'a') as file:
    for caption in captions:
      row = {'run_id': run_id, 'samples_seen': samples, 'task': task, **caption}
      file.write(json.dumps(row) + '\n')


def _average(table: results_lib.ResultsFile, info, step: int, zero_shot: list) -> int:
  """The suite average over the requested zero-shot tasks, as the paper's
  `datacomp_classification`: written once every one of them has rows at this checkpoint, so a
  failed task holds it back until a rerun succeeds."""
  run_id, samples = info.columns['run_id'], step * info.plan.global_batch
  names = [t.name for t in zero_shot]
  if not names or table.has(run_id, samples, AVERAGE_TASK):
    return 0
  if not all(table.has(run_id, samples, name) for name in names):
    return 0
  metrics = {
      m: float(np.mean([table.values[(run_id, samples, n, m)] for n in names]))
      for m in AVERAGED_METRICS
  }
  metrics['tasks'] = len(names)
  table.append(info.rows(step, AVERAGE_TASK, metrics))
  return len(metrics)
