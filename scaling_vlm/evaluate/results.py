"""The results table: long-format rows, one per (run, checkpoint, task, metric).

The columns (`scaling_vlm.run.RESULT_COLUMNS`) are the contract with `fitting`. A run's columns
come from its resolved `config.json` and the model zoo (`scaling_vlm.run.Run`); each checkpoint
adds samples seen and compute (GFLOPs per sample x samples seen, the paper's compute axis).
Rows are appended to `WORKDIR/results.csv` one task at a time, so an interrupted evaluation
keeps what it finished, and (run, samples seen, task) triples already in the file are what a
rerun skips.
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import os

from scaling_vlm import models, run as run_lib

COLUMNS = run_lib.RESULT_COLUMNS

log = logging.getLogger(__name__)


class RunInfo:
  """What every row of one run shares, and the per-checkpoint compute columns."""

  def __init__(self, run: run_lib.Run, dataset: str | None = None):
    self.run = run
    self.plan = run.plan
    self.params = models.param_count(run.model)
    self.columns = run.columns(dataset)

  def rows(self, step: int, task: str, metrics: dict[str, float]) -> list[dict]:
    samples = step * self.plan.global_batch
    shared = self.columns | {
        'samples_seen': samples,
        'gflops_per_sample': self.run.gflops_per_sample,
        'compute_gflops': self.run.compute_gflops(samples),
        'params': self.params,
        'task': task,
        'cooldown_from': self.run.cooldown_from,
        'seed': self.run.config.train.seed,
    }
    return [shared | {'metric': name, 'value': value} for name, value in metrics.items()]


class ResultsFile:
  """`results.csv` of one run: the (run_id, samples_seen, task) triples it holds, and appends.

  Every append replaces the file whole (a temporary file, fsynced, renamed over it), so a kill
  or a full disk leaves the table as it was before or after, never half a task's rows. A file
  torn by an older writer loses its cut-short last line, with a warning, and the next append
  writes it back without it. Several processes may append to one run's table (evaluation
  during training, a separate `python -m scaling_vlm.evaluate`): each append holds an exclusive
  lock on `results.csv.lock` and reads the file again under it, so no writer replaces rows
  another wrote since it last read, and rows of a (run, step, task) already there are not
  written twice.
  """

  def __init__(self, path: str):
    self.path = path
    self.reload()

  def reload(self) -> None:
    """The file as it is now on disk (another process may have appended since)."""
    self.done: set[tuple[str, int, str]] = set()
    self.values: dict[tuple[str, int, str, str], float] = {}
    self.text = ''  # the file's complete lines
    if not os.path.exists(self.path):
      return
    with open(self.path, newline='') as file:
      text = file.read()
    if text and not text.endswith('\n'):
      torn = text[text.rfind('\n') + 1 :]
      log.warning(
          '%s: dropped its last line, cut short by an interrupted write (%r); the next write '
          'repairs the file.',
          self.path,
          torn[:60],
      )
      text = text[: len(text) - len(torn)]
    reader = csv.DictReader(io.StringIO(text, newline=''))
    if tuple(reader.fieldnames or ()) != COLUMNS:
      raise ValueError(
          f"{self.path} has columns {reader.fieldnames}, not the results table's {list(COLUMNS)};"
          ' move it away to start a new one'
      )
    for row in reader:
      self._add(row)
    self.text = text

  def _add(self, row: dict) -> None:
    key = (row['run_id'], int(row['samples_seen']), row['task'])
    self.done.add(key)
    self.values[(*key, row['metric'])] = float(row['value'])

  def has(self, run_id: str, samples_seen: int, task: str) -> bool:
    return (run_id, samples_seen, task) in self.done

  def append(self, rows: list[dict]) -> None:
    with open(f'{self.path}.lock', 'a') as lock:
      fcntl.lockf(lock, fcntl.LOCK_EX)  # released when the file closes, or its process dies
      self.reload()  # what other writers appended since this table was read
      rows = [r for r in rows if not self.has(r['run_id'], int(r['samples_seen']), r['task'])]
      if not rows:
        return
      new = io.StringIO(newline='')
      writer = csv.DictWriter(new, COLUMNS)
      if not self.text:
        writer.writeheader()
      writer.writerows(rows)
      text = self.text + new.getvalue()
      temporary = f'{self.path}.tmp'
      with open(temporary, 'w', newline='') as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
      os.replace(temporary, self.path)
    self.text = text
    for row in rows:
      self._add(row)
