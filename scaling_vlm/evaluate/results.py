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
import os

from scaling_vlm import models, run as run_lib

COLUMNS = run_lib.RESULT_COLUMNS


class RunInfo:
  """What every row of one run shares, and the per-checkpoint compute columns."""

  def __init__(self, run: run_lib.Run, dataset: str | None = None):
    self.run = run
    self.plan = run.plan
    self.params = models.count_params(models.abstract(run.model.replace(scan_layers=True)))
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
    }
    return [shared | {'metric': name, 'value': value} for name, value in metrics.items()]


class ResultsFile:
  """`results.csv` of one run: the (run_id, samples_seen, task) triples it holds, and appends."""

  def __init__(self, path: str):
    self.path = path
    self.done: set[tuple[str, int, str]] = set()
    self.values: dict[tuple[str, int, str, str], float] = {}
    if os.path.exists(path):
      with open(path, newline='') as file:
        reader = csv.DictReader(file)
        if tuple(reader.fieldnames or ()) != COLUMNS:
          raise ValueError(
              f"{path} has columns {reader.fieldnames}, not the results table's {list(COLUMNS)};"
              ' move it away to start a new one'
          )
        for row in reader:
          key = (row['run_id'], int(row['samples_seen']), row['task'])
          self.done.add(key)
          self.values[(*key, row['metric'])] = float(row['value'])

  def has(self, run_id: str, samples_seen: int, task: str) -> bool:
    return (run_id, samples_seen, task) in self.done

  def append(self, rows: list[dict]) -> None:
    new = not os.path.exists(self.path)
    with open(self.path, 'a', newline='') as file:
      writer = csv.DictWriter(file, COLUMNS)
      if new:
        writer.writeheader()
      writer.writerows(rows)
    for row in rows:
      key = (row['run_id'], row['samples_seen'], row['task'])
      self.done.add(key)
      self.values[(*key, row['metric'])] = float(row['value'])
