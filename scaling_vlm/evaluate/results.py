"""The results table (DESIGN.md §3): long-format rows, one per (run, checkpoint, task, metric).

A run's columns come from its resolved `config.json` and the model zoo; each checkpoint adds
samples seen and compute (GFLOPs per sample x samples seen, the paper's compute axis). Rows
are appended to `WORKDIR/results.csv` one task at a time, so an interrupted evaluation keeps
what it finished, and (run, samples seen, task) triples already in the file are what a rerun
skips.
"""

from __future__ import annotations

import csv
import json
import os

import ml_collections

from scaling_vlm import flops, models
from scaling_vlm.train import trainer
from scaling_vlm.train.config import parse_count

RESULTS_FILE = 'results.csv'
RUN_COLUMNS = (
    'run_id',
    'arch',
    'model',
    'pretrain_dataset',
    'lr_schedule',
    'lr',
    'global_batch_size',
    'warmup',
    'total_samples',
)
COLUMNS = (
    *RUN_COLUMNS,
    'samples_seen',
    'gflops_per_sample',
    'compute_gflops',
    'params',
    'task',
    'metric',
    'value',
    'cooldown_from',
)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, trainer.CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} is missing: {workdir} is not a training run directory')
  with open(path) as file:
    return ml_collections.ConfigDict(json.load(file))


def pretrain_dataset(data: ml_collections.ConfigDict) -> str:
  """'synthetic', or the name of the folder holding the shards ('/data/datacomp/{0..9}.tar'
  and the folder '/data/datacomp' both -> 'datacomp')."""
  if data.source == 'synthetic':
    return 'synthetic'
  first = str(data.shards).split(',')[0]
  folder = first if first.endswith('/') or os.path.isdir(first) else os.path.dirname(first)
  return os.path.basename(folder.rstrip('/')) or first


class RunInfo:
  """What every row of one run shares, and the per-checkpoint compute columns."""

  def __init__(self, workdir: str, config: ml_collections.ConfigDict, dataset: str | None = None):
    self.plan = trainer.RunPlan.from_config(config)
    arch = trainer.model_config(config)
    self.gflops_per_sample = flops.forward_gflops(arch)
    self.params = models.count_params(models.abstract(arch.replace(scan_layers=True)))
    schedule = config.optim.schedule
    self.columns = {
        'run_id': os.path.basename(os.path.abspath(workdir)),
        'arch': arch.arch,
        'model': arch.name,
        'pretrain_dataset': dataset or pretrain_dataset(config.data),
        'lr_schedule': schedule,
        'lr': config.optim.lr,
        'global_batch_size': self.plan.global_batch,
        'warmup': self.plan.warmup_steps,  # in steps, as the paper's table (and fitting) read it
        'total_samples': self.plan.total_steps * self.plan.global_batch,
    }
    # A cooldown branch names the constant run it left and the samples seen when it did.
    self.cooldown_from = (
        f'{os.path.basename(os.path.abspath(config.cooldown.parent))}@'
        f'{parse_count(config.cooldown.start, "cooldown.start")}'
        if schedule == 'cooldown'
        else ''
    )

  def rows(self, step: int, task: str, metrics: dict[str, float]) -> list[dict]:
    samples = step * self.plan.global_batch
    shared = self.columns | {
        'samples_seen': samples,
        'gflops_per_sample': self.gflops_per_sample,
        'compute_gflops': self.gflops_per_sample * samples,
        'params': self.params,
        'task': task,
        'cooldown_from': self.cooldown_from,
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
