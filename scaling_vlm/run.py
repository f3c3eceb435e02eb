"""What a run is: its resolved config, its step plan, its workdir and its compute.

A run is one resolved `ml_collections.ConfigDict` (a config file's preset plus overrides) and
the workdir it lives in. The config alone gives the step plan (steps, warmup, milestones), the
model's zoo entry and the compute on the paper's axis; the workdir says what has been done.
Training, evaluation, sweeps, collection and the benchmarks read a run through this module,
never through the trainer. It is plain Python: planning a sweep of hundreds of runs, or
reading one's results, starts no JAX.

The results table's columns are declared here for `scaling_vlm` (evaluation writes them);
`fitting`, which never imports `scaling_vlm`, declares the same contract in `fitting/table.py`,
and a test holds the two equal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import math
import os
import re
import socket

import ml_collections
import numpy as np

from scaling_vlm import flops, models
from scaling_vlm.models import registry
from scaling_vlm.train.config import changed_keys, parse_count

# The train CLI's exit status when it stopped early with its state saved (SIGTERM, preemption):
# EX_TEMPFAIL, "run it again"; 0 is kept for a finished run.
EXIT_INCOMPLETE = 75

# One row per (run, checkpoint, task, metric). What every row of a run shares:
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
RESULT_COLUMNS = (
    *RUN_COLUMNS,
    'samples_seen',
    'gflops_per_sample',
    'compute_gflops',
    'params',
    'task',
    'metric',
    'value',
    'cooldown_from',  # empty, or 'parent_run@samples' for a cooldown branch
    'seed',  # train.seed: replicates of one run differ only in it
)


class WorkdirBusy(RuntimeError):
  """Another live process holds the workdir's lock."""


@dataclasses.dataclass(frozen=True)
class Workdir:
  """Where a run's files live. Everything a run produces is under one folder."""

  path: str

  @property
  def config(self) -> str:
    """The resolved config, written when the run starts."""
    return os.path.join(self.path, 'config.json')

  @property
  def checkpoints(self) -> str:
    return os.path.join(self.path, 'checkpoints')

  @property
  def metrics(self) -> str:
    return os.path.join(self.path, 'metrics.jsonl')

  @property
  def tensorboard(self) -> str:
    return os.path.join(self.path, 'tensorboard')

  @property
  def results(self) -> str:
    return os.path.join(self.path, 'results.csv')

  @property
  def captions(self) -> str:
    return os.path.join(self.path, 'captions.jsonl')

  @property
  def run_id(self) -> str:
    """The run's name in the results table: its folder's name."""
    return os.path.basename(os.path.abspath(self.path))

  def has_config(self) -> bool:
    return os.path.isfile(self.config)

  def read_config(self) -> ml_collections.ConfigDict:
    if not self.has_config():
      raise FileNotFoundError(
          f'{self.config} is missing: {self.path} is not a training run directory'
      )
    with open(self.config) as file:
      return ml_collections.ConfigDict(json.load(file))

  def config_conflicts(self, config: ml_collections.ConfigDict) -> list[str]:
    """Keys where the config saved here differs from `config` in what it trains (none if
    nothing is saved): the trainer refuses to resume over them, and sweeps report them. Keys
    added to the code since the run started, at their defaults, are no conflict, nor is what is
    evaluated along the way (`eval.*`), which a resumed run may change."""
    if not self.has_config():
      return []
    with open(self.config) as file:
      saved = json.load(file)
    changed = changed_keys(saved, json.loads(config.to_json_best_effort()))
    return [key for key in changed if not key.startswith('eval.')]

  def write_config(self, config: ml_collections.ConfigDict) -> None:
    os.makedirs(self.path, exist_ok=True)
    with open(f'{self.config}.tmp', 'w') as file:
      json.dump(json.loads(config.to_json_best_effort()), file, indent=2)
    os.replace(f'{self.config}.tmp', self.config)  # a reader never sees half a config

  @property
  def lock(self) -> str:
    return os.path.join(self.path, 'lock')

  @contextlib.contextmanager
  def locked(self):
    """Holds the workdir's exclusive lock while the block runs: a second trainer on the same
    workdir (a relaunched sweep, a requeued job while the old one lives) fails at once with
    WorkdirBusy, naming the holder. The lock is the kernel's (fcntl), so a process that dies,
    even by kill -9, leaves none behind; the file only says who held it last."""
    os.makedirs(self.path, exist_ok=True)
    fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError:
        holder = os.pread(fd, 200, 0).decode(errors='replace').strip() or 'another process'
        raise WorkdirBusy(
            f'{self.path} is in use by another trainer ({holder}); wait for it to end or stop '
            'it, or choose another --workdir.'
        ) from None
      os.ftruncate(fd, 0)
      os.pwrite(fd, f'host {socket.gethostname()} pid {os.getpid()}\n'.encode(), 0)
      yield
    finally:
      os.close(fd)  # releases the lock

  def saved_steps(self) -> set[int]:
    """Steps with a complete checkpoint: orbax renames a step folder into place only once its
    save is complete, so a folder named by a number is a finished save."""
    if not os.path.isdir(self.checkpoints):
      return set()
    return {int(name) for name in os.listdir(self.checkpoints) if name.isdigit()}


def milestone_samples(spec: str, total_samples: int, global_batch: int) -> list[int]:
  """The samples-seen values of the milestone checkpoints, each a whole number of steps,
  always ending with the final one.

  `geometric:N` puts N points per decade from one batch up to the total; an explicit list
  ('1M,2.5M,10M') names them. Counts accept the same suffixes as the config.
  """
  match = re.fullmatch(r'geometric:(\d+)', spec.strip())
  if match:
    per_decade = int(match.group(1))
    if per_decade < 1:
      raise ValueError(f'checkpoint.milestones={spec!r}: N in geometric:N must be >= 1.')
    decades = math.log10(total_samples / global_batch)
    points = np.logspace(0, decades, max(2, round(decades * per_decade) + 1)) * global_batch
  else:
    points = [parse_count(v, 'checkpoint.milestones') for v in spec.split(',') if v.strip()]
    if points != sorted(set(points)):
      raise ValueError(f'checkpoint.milestones={spec!r} must increase, without repeats.')
    if points and points[-1] > total_samples:
      raise ValueError(
          f'checkpoint.milestones={spec!r} names {points[-1]} samples, past the end of the run '
          f'(train.samples={total_samples}).'
      )
  steps = {min(math.ceil(p / global_batch), total_samples // global_batch) for p in points}
  steps.add(total_samples // global_batch)
  return [s * global_batch for s in sorted(steps) if s > 0]


@dataclasses.dataclass(frozen=True)
class RunPlan:
  """The step counts a config implies (one step = one global batch)."""

  global_batch: int
  total_steps: int
  warmup_steps: int
  milestone_steps: tuple[int, ...]
  cooldown_start: int | None  # the parent's step a cooldown branch starts from

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> RunPlan:
    batch = config.train.global_batch
    total_samples = parse_count(config.train.samples, 'train.samples')
    total_steps = total_samples // batch
    if total_steps < 1:
      raise ValueError(
          f'train.samples={config.train.samples} is less than one global batch ' f'({batch}).'
      )
    warmup_steps = math.ceil(parse_count(config.train.warmup, 'train.warmup') / batch)
    cooldown_start = None
    if config.optim.schedule == 'cooldown':
      start = parse_count(config.cooldown.start, 'cooldown.start')
      if start % batch:
        raise ValueError(
            f'cooldown.start={config.cooldown.start} is not a whole number of '
            f"global batches ({batch}); branch from one of the parent's checkpoints."
        )
      cooldown_start = start // batch
      # A branch has one scaling-law point: the end of its cooldown.
      milestones = (total_steps,)
    else:
      spec = config.checkpoint.milestones
      milestones = tuple(s // batch for s in milestone_samples(spec, total_samples, batch))
    if warmup_steps >= total_steps:
      raise ValueError(
          f'train.warmup={config.train.warmup} is not shorter than '
          f'train.samples={config.train.samples}; shorten the warmup.'
      )
    return cls(batch, total_steps, warmup_steps, milestones, cooldown_start)

  @property
  def total_samples(self) -> int:
    return self.total_steps * self.global_batch

  @property
  def start_samples(self) -> int:
    """Where training starts: 0, or a cooldown branch's parent checkpoint."""
    return (self.cooldown_start or 0) * self.global_batch


def model_config(config: ml_collections.ConfigDict) -> models.ModelConfig:
  """The run's model (a zoo entry, a model file, or `model.custom`'s numbers) with its
  numerics switches applied."""
  m = config.model
  impl = None if m.attention_impl == 'auto' else m.attention_impl
  # Runs saved before model.custom existed have zoo models.
  return registry.lookup(m.name, m.get('custom', '')).replace(
      dtype=m.dtype,
      attention_impl=impl,
      scan_layers=m.scan_layers,
      remat=m.remat,
      init=m.get('init', 'open_clip'),  # runs saved before the key existed
  )


def pretrain_dataset(data: ml_collections.ConfigDict) -> str:
  """'synthetic' ('synthetic-noise0.3' where 30% of its captions are another scene's), or
  the name of the folder holding the shards ('/data/datacomp/{0..9}.tar' and the folder
  '/data/datacomp' both -> 'datacomp')."""
  if data.source == 'synthetic':
    noise = data.get('caption_noise', 0.0)
    return f'synthetic-noise{noise:g}' if noise else 'synthetic'
  first = str(data.shards).split(',')[0]
  folder = first if first.endswith('/') or os.path.isdir(first) else os.path.dirname(first)
  return os.path.basename(folder.rstrip('/')) or first


class Run:
  """A run: its config, plan, model and workdir, and the compute of its checkpoints."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | Workdir):
    self.config = config
    self.workdir = workdir if isinstance(workdir, Workdir) else Workdir(workdir)
    self.plan = RunPlan.from_config(config)
    self.model = model_config(config)

  @classmethod
  def load(cls, workdir: str) -> Run:
    """The run saved in `workdir` (its config.json)."""
    workdir = Workdir(workdir)
    return cls(workdir.read_config(), workdir)

  @functools.cached_property
  def gflops_per_sample(self) -> float:
    """Forward GFLOPs of one sample in the paper's convention."""
    return flops.forward_gflops(self.model)

  @functools.cached_property
  def train_flops_per_sample(self) -> float:
    """FLOPs a training step executes per sample (forward + backward, attention included)."""
    return float(flops.train_flops(self.model))

  def compute_gflops(self, samples_seen: int) -> float:
    """The paper's compute axis: GFLOPs per sample x samples seen."""
    return self.gflops_per_sample * samples_seen

  def finished(self) -> bool:
    """Whether its last checkpoint is on disk."""
    return self.plan.total_steps in self.workdir.saved_steps()

  @property
  def cooldown_from(self) -> str:
    """A cooldown branch's 'parent_run@samples' (the constant run it left, and when); ''."""
    if self.config.optim.schedule != 'cooldown':
      return ''
    parent = Workdir(self.config.cooldown.parent).run_id
    return f'{parent}@{parse_count(self.config.cooldown.start, "cooldown.start")}'

  def columns(self, dataset: str | None = None) -> dict:
    """The results-table columns every row of this run shares (RUN_COLUMNS)."""
    return {
        'run_id': self.workdir.run_id,
        'arch': self.model.arch,
        'model': self.model.name,
        'pretrain_dataset': dataset or pretrain_dataset(self.config.data),
        'lr_schedule': self.config.optim.schedule,
        'lr': self.config.optim.lr,
        'global_batch_size': self.plan.global_batch,
        'warmup': self.plan.warmup_steps,  # in steps, as the paper's table (and fitting) read it
        'total_samples': self.plan.total_samples,
    }
