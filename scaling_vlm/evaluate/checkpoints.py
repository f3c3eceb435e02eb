"""Evaluation of every milestone checkpoint of a run into its results table.

For each milestone on disk, the tasks without rows yet are run and their rows appended, so a
second call adds nothing and an interrupted one resumes at the first missing
(checkpoint, task). The model is built once per run and each checkpoint's parameters are
loaded into it, so the jitted embedding programs compile once per run. A checkpoint that
cannot be read, or a task that fails, is recorded as skipped with the reason; the rest goes
on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from scaling_vlm import models
from scaling_vlm.data import sources
from scaling_vlm.evaluate import results as results_lib
from scaling_vlm.evaluate import tasks as tasks_lib
from scaling_vlm.train import checkpoints as checkpoints_lib
from scaling_vlm.train import trainer

log = logging.getLogger(__name__)

CAPTIONS_FILE = 'captions.jsonl'
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


def milestone_steps(workdir: str, plan: trainer.RunPlan) -> list[int]:
  """The run's milestone steps that have a checkpoint on disk (a running run has fewer)."""
  folder = os.path.join(workdir, 'checkpoints')
  saved = {int(n) for n in os.listdir(folder) if n.isdigit()} if os.path.isdir(folder) else set()
  return [step for step in plan.milestone_steps if step in saved]


def evaluate_run(
    workdir: str,
    specs: Sequence[str] = tasks_lib.DEFAULT_TASKS,
    *,
    synthetic_size: int = 1000,
    batch_size: int = 256,
    dataset: str | None = None,
    summary: Summary | None = None,
) -> Summary:
  """Evaluates every milestone checkpoint of the run in `workdir` on the tasks `specs` name
  (see `tasks`), appending rows to `workdir/results.csv`."""
  summary = summary or Summary()
  config = results_lib.read_config(workdir)
  info = results_lib.RunInfo(workdir, config, dataset)
  arch = trainer.model_config(config)
  tokenizer = sources.make_tokenizer(config.data, arch.text)
  image_size = arch.vision.image_size
  tasks = tasks_lib.make_tasks(specs, arch.arch, image_size, synthetic_size)
  table = results_lib.ResultsFile(os.path.join(workdir, results_lib.RESULTS_FILE))
  run_id, batch = info.columns['run_id'], info.plan.global_batch
  failed_loads: set[str] = set()
  model = None
  steps = milestone_steps(workdir, info.plan)
  summary.pending += len(info.plan.milestone_steps) - len(steps)
  for step in steps:
    samples = step * batch
    todo = [t for t in tasks if not table.has(run_id, samples, t.name)]
    summary.present += len(tasks) - len(todo)
    todo = [t for t in todo if t.name not in failed_loads]
    if not todo:
      continue
    model = model or models.build(arch)
    state = os.path.join(workdir, 'checkpoints', str(step), 'state')
    try:
      checkpoints_lib.load_params(model, state)
    except Exception as error:  # orbax raises many kinds for a damaged directory
      summary.skip(workdir, samples, f'checkpoint {state}', error)
      continue
    for task in todo:
      start = time.perf_counter()
      try:
        task.data  # loads once per run; a missing dataset fails every checkpoint alike
      except Exception as error:
        failed_loads.add(task.name)
        summary.skip(workdir, None, f'task {task.name}', error)
        continue
      try:
        metrics, captions = task.run(model, tokenizer, image_size, batch_size)
      except Exception as error:
        summary.skip(workdir, samples, f'task {task.name}', error)
        continue
      # Captions first: the rows mark the task done, so a crash between the two repeats it.
      _write_captions(workdir, run_id, samples, task.name, captions)
      table.append(info.rows(step, task.name, metrics))
      summary.rows += len(metrics)
      log.info(
          '%s @ %d: %s %s (%.1fs)', run_id, samples, task.name, metrics, time.perf_counter() - start
      )
    summary.rows += _average(table, info, step, [t for t in tasks if t.kind == tasks_lib.ZERO_SHOT])
  return summary


def _write_captions(workdir: str, run_id: str, samples: int, task: str, captions: list) -> None:
  """Generated captions go next to the numbers, one JSON line each."""
  if not captions:
    return
  with open(os.path.join(workdir, CAPTIONS_FILE), 'a') as file:
    for caption in captions:
      row = {'run_id': run_id, 'samples_seen': samples, 'task': task, **caption}
      file.write(json.dumps(row) + '\n')


def _average(table: results_lib.ResultsFile, info, step: int, zero_shot: list) -> int:
  """The suite average over the zero-shot tasks that have rows at this checkpoint, as the
  paper's `datacomp_classification`; written once, when every requested task is in."""
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
