"""Evaluation of every milestone checkpoint of a run into its results table.

For each milestone on disk, the tasks without rows yet are run and their rows appended, so a
second call adds nothing and an interrupted one resumes at the first missing
(checkpoint, task). The model is built once per run and each checkpoint's parameters are
loaded into it, so the jitted embedding programs compile once per run. Parameters are read
straight into their layout on the evaluation mesh (`mesh`, `restore`): replicated by default,
split over `fsdp` devices for models too big for one; each batch is split over the batch axes.
A checkpoint that cannot be read, or a task that fails, is recorded as skipped with the reason;
the rest goes on. Training evaluates its parameters in memory through the same `RunEvaluation`
(`evaluate_model`; `scaling_vlm.train.evals`), so its rows are the ones this would write.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from scaling_vlm import models, run as run_lib
from scaling_vlm.data import sources
from scaling_vlm.evaluate import board
from scaling_vlm.evaluate import mesh as mesh_lib
from scaling_vlm.evaluate import progress as progress_lib
from scaling_vlm.evaluate import restore
from scaling_vlm.evaluate import results as results_lib
from scaling_vlm.evaluate import tasks as tasks_lib

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

  def skip(self, workdir: str, samples: int | None, what: str, error: BaseException) -> str:
    """Records what was skipped and why; returns the reason, one line (the first of the
    error's: a summary line per skip stays one line)."""
    lines = str(error).strip().splitlines()
    reason = f'{type(error).__name__}: {lines[0] if lines else ""}'
    self.skipped.append((workdir, samples, what, reason))
    return reason

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
    progress: progress_lib.Progress | None = None,
) -> Summary:
  """Evaluates every milestone checkpoint of the run in `workdir` on the tasks `specs` name
  (see `tasks`), appending rows to `workdir/results.csv` and its TensorBoard; `mesh` as
  `--mesh` (see `mesh`). Raises OSError or ValueError for a folder that is not a run."""
  summary = summary or Summary()
  run = RunEvaluation(workdir, specs, synthetic_size, batch_size, dataset, summary, mesh)
  progress = progress or progress_lib.Progress()
  run.plan(progress)
  run.evaluate(progress)
  return summary


def evaluate_runs(
    workdirs: Sequence[str],
    specs: Sequence[str] = tasks_lib.DEFAULT_TASKS,
    *,
    synthetic_size: int = 1000,
    batch_size: int = 256,
    dataset: str | None = None,
    mesh: str = mesh_lib.DEFAULT,
    progress: progress_lib.Progress | None = None,
) -> Summary:
  """`evaluate_run` of each of `workdirs`, all planned first so that the progress counts (and
  the ETA covers) every run; a folder that is not a run is skipped."""
  summary = Summary()
  progress = progress or progress_lib.Progress()
  runs = []
  for workdir in workdirs:
    try:
      runs.append(RunEvaluation(workdir, specs, synthetic_size, batch_size, dataset, summary, mesh))
    except (OSError, ValueError) as error:  # not a run: the next one
      progress.note(f"{workdir}: SKIPPED: {summary.skip(workdir, None, 'run', error)}")
  for run in runs:
    run.plan(progress)
  while runs:  # each run let go once done: its images held in memory and its parameters
    runs.pop(0).evaluate(progress)
  return summary


class RunEvaluation:
  """One run's evaluation: its table, tasks, tokenizer and the model checkpoints load into.
  `mesh`: `--mesh`'s text, or the mesh itself (training's, where its parameters live)."""

  def __init__(self, workdir, specs, synthetic_size, batch_size, dataset, summary, mesh):
    self.workdir, self.summary = workdir, summary
    run = run_lib.Run.load(workdir)
    config = run.config
    self.info = results_lib.RunInfo(run, dataset)
    self.run_id = self.info.columns['run_id']
    self.arch = run.model
    self.tokenizer = sources.make_tokenizer(config.data, self.arch.text)
    self.image_size = self.arch.vision.image_size
    self.tasks = tasks_lib.make_tasks(
        specs, self.image_size, synthetic_size, captions=self.arch.spec.captions
    )
    self.table = results_lib.ResultsFile(run.workdir.results)
    self.board = board.EvalBoard(run.workdir.tensorboard, config.log.get('tensorboard', True))
    if not isinstance(mesh, Mesh):
      mesh = mesh_lib.make(mesh_lib.parse(mesh, config.get('mesh')))
    self.mesh = mesh
    self.batch_size = batch_size  # rounded to whole rows per device where batches are made
    self.failed_loads: set[str] = set()
    self.todo: dict[int, list[tasks_lib.Task]] = {}
    # Abstract until the first checkpoint is read: no parameters are initialised, anywhere.
    # Built by `evaluate`, which reads checkpoints; training hands its parameters over.
    self.graphdef = self.abstract = None
    self.model = None

  def label(self, step: int) -> str:
    return f'{self.run_id} @ {step * self.info.plan.global_batch:,} samples'

  def plan(self, progress: progress_lib.Progress) -> None:
    """Which tasks each milestone checkpoint on disk still lacks rows of."""
    steps = milestone_steps(self.info.run)
    unsaved = len(self.info.plan.milestone_steps) - len(steps)
    self.summary.pending += unsaved
    for step in steps:
      samples = step * self.info.plan.global_batch
      todo = [t for t in self.tasks if not self.table.has(self.run_id, samples, t.name)]
      self.summary.present += len(self.tasks) - len(todo)
      self.todo[step] = todo
      progress.plan(self.label(step), [t.name for t in todo], self.run_id)
    units = sum(len(todo) for todo in self.todo.values())
    progress.note(
        f'{self.run_id}: {units} (checkpoint, task) pairs to evaluate at {len(steps)} milestone'
        f' checkpoints on {len(self.tasks)} tasks; {len(steps) * len(self.tasks) - units} done'
        f' before, {unsaved} milestones not saved yet'
    )

  def evaluate(self, progress: progress_lib.Progress, stop: threading.Event | None = None) -> None:
    """Every planned checkpoint, then the run's TensorBoard file is closed; `stop`, once set,
    ends it between tasks."""
    try:
      if self.abstract is None and any(self.todo.values()):
        # Outside the mesh context: the abstract model carries logical axis names.
        self.graphdef, self.abstract = nnx.split(models.abstract(self.arch))
      with jax.set_mesh(self.mesh):
        for step, todo in self.todo.items():
          if stop is not None and stop.is_set():
            break
          self._checkpoint(step, todo, progress, stop)
    finally:
      self.close()

  def _checkpoint(self, step: int, todo: list, progress: progress_lib.Progress, stop=None) -> None:
    """The tasks without rows at this checkpoint, then the suite average."""
    samples, label = step * self.info.plan.global_batch, self.label(step)
    if not [t for t in todo if t.name not in self.failed_loads]:
      return
    state = os.path.join(self.info.run.workdir.checkpoints, str(step), 'state')
    progress.now(f'{label}: reading the checkpoint')
    start = time.perf_counter()
    try:
      self._load(state)
    except Exception as error:  # orbax raises many kinds for a damaged directory
      reason = self.summary.skip(self.workdir, samples, f'checkpoint {state}', error)
      progress.dropped(label, None, reason)
      return
    progress.read(label, time.perf_counter() - start)
    self.evaluate_model(step, self.model, todo, progress, stop)

  def evaluate_model(
      self,
      step: int,
      model,
      todo: list[tasks_lib.Task] | None = None,
      progress: progress_lib.Progress | None = None,
      stop: threading.Event | None = None,
  ) -> dict[str, dict]:
    """`model`, the run's at `step`, on the tasks of `todo` (default: those the table, read
    again, has no rows of at `step`), then the suite average; each task's rows are appended as
    it finishes. Returns the metrics written, by task. `stop`, once set, ends it between tasks.
    """
    samples, label = step * self.info.plan.global_batch, self.label(step)
    progress = progress or progress_lib.Progress()
    if todo is None:  # another process may have evaluated this step since the table was read
      self.table.reload()
      todo = [t for t in self.tasks if not self.table.has(self.run_id, samples, t.name)]
    todo = [t for t in todo if t.name not in self.failed_loads]
    written: dict[str, dict] = {}
    for task in todo:
      if stop is not None and stop.is_set():
        return written
      progress.now(f'{label}: {task.name}')
      start = time.perf_counter()
      try:
        task.data  # loads once per run; a missing dataset fails every checkpoint alike
      except Exception as error:
        self.failed_loads.add(task.name)
        reason = self.summary.skip(self.workdir, None, f'task {task.name}', error)
        progress.forget([self.label(s) for s in self.todo if s > step], task.name)
        progress.dropped(label, task.name, reason)
        continue
      try:
        metrics, captions = task.run(model, self.tokenizer, self.image_size, self.batch_size)
      except Exception as error:
        reason = self.summary.skip(self.workdir, samples, f'task {task.name}', error)
        progress.dropped(label, task.name, reason)
        continue
      # Captions first: the rows mark the task done, so a crash between the two repeats it.
      _write_captions(self.workdir, self.run_id, samples, task.name, captions)
      self._append(step, task.name, metrics)
      written[task.name] = metrics
      progress.finished(label, task.name, time.perf_counter() - start, metrics)
    zero_shot = [t.name for t in self.tasks if t.kind == tasks_lib.ZERO_SHOT]
    if not self.table.has(self.run_id, samples, AVERAGE_TASK):
      done = {n: self._values(samples, n) for n in zero_shot}
      metrics = average(done)
      if metrics:
        self._append(step, AVERAGE_TASK, metrics)
        written[AVERAGE_TASK] = metrics
        progress.note(f'{label}: {AVERAGE_TASK} {progress_lib.shown(metrics)}')
    return written

  def close(self) -> None:
    self.board.close()

  def _append(self, step: int, task: str, metrics: dict) -> None:
    """A task's rows: the results table first (what reruns go by), then TensorBoard."""
    self.table.append(self.info.rows(step, task, metrics))
    self.summary.rows += len(metrics)
    self.board.write(step, task, metrics)

  def _values(self, samples: int, task: str) -> dict[str, float] | None:
    if not self.table.has(self.run_id, samples, task):
      return None
    return {m: self.table.values[(self.run_id, samples, task, m)] for m in AVERAGED_METRICS}

  def _load(self, state_dir: str) -> None:
    """The checkpoint's parameters into the run's model, in their layout on the mesh."""
    state = restore.params(self.abstract, state_dir, self.mesh)
    if self.model is None:
      self.model = nnx.merge(self.graphdef, state)
    else:
      nnx.update(self.model, state)


def average(per_task: dict[str, dict[str, float] | None]) -> dict[str, float]:
  """The suite average over the requested zero-shot tasks (`per_task`: each one's metrics,
  None where it has none), as the paper's `datacomp_classification`: empty until every one of
  them has metrics, so a failed task holds it back until a rerun succeeds."""
  if not per_task or any(metrics is None for metrics in per_task.values()):
    return {}
  out: dict = {
      m: float(np.mean([metrics[m] for metrics in per_task.values()])) for m in AVERAGED_METRICS
  }
  out['tasks'] = len(per_task)
  return out


def _write_captions(workdir: str, run_id: str, samples: int, task: str, captions: list) -> None:
  """Generated captions go next to the numbers, one JSON line each."""
  if not captions:
    return
  with open(run_lib.Workdir(workdir).captions, 'a') as file:
    for caption in captions:
      row = {'run_id': run_id, 'samples_seen': samples, 'task': task, **caption}
      file.write(json.dumps(row) + '\n')
