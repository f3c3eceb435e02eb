"""What a run is about to do, said when it starts.

Between its start and its first step a run builds its state, opens its data and compiles its
step: minutes for a ViT on a CPU, and silent until now. `plan` is printed at once (model,
devices and mesh, batches, steps, milestones, where things go), `data` once the source is
open, then the trainer says 'compiling' and how long it took.
"""

from __future__ import annotations

import importlib.util

import jax
import ml_collections
from jax.sharding import Mesh

from scaling_vlm import models, run as run_lib


def count(n: float) -> str:
  """1280000 -> '1.28M', 65536 -> '65.5k'."""
  for suffix, size in (('B', 1e9), ('M', 1e6), ('k', 1e3)):
    if n >= size:
      return f'{n / size:.4g}{suffix}'
  return f'{n:g}'


def _milestones(plan: run_lib.RunPlan) -> str:
  samples = [count(s * plan.global_batch) for s in plan.milestone_steps]
  shown = samples if len(samples) <= 6 else [*samples[:3], '...', *samples[-2:]]
  return f'{len(samples)} at {", ".join(shown)} samples'


def _metrics(config: ml_collections.ConfigDict, workdir: run_lib.Workdir) -> str:
  where = [workdir.metrics]
  if config.log.tensorboard:
    if importlib.util.find_spec('tensorboardX') is not None:
      where.append(f'TensorBoard {workdir.tensorboard}')
    else:
      where.append('no TensorBoard (tensorboardX is not installed)')
  if config.log.get('wandb', False):
    mode = config.log.wandb_mode
    shown = '' if mode == 'auto' else f' ({mode})'
    where.append(f'W&B project {config.log.wandb_project}{shown}')
  return ', '.join(where)


def plan(config: ml_collections.ConfigDict, run: run_lib.Run, mesh: Mesh) -> list[str]:
  """What the config and the devices say, before anything is built."""
  arch, p = run.model, run.plan
  # Shapes only, layers scanned: the count without memory, in about a second for any size.
  params = models.param_count(arch)
  devices = jax.devices()
  shards = mesh.shape['data'] * mesh.shape['fsdp']  # the batch is split over these
  rows = p.global_batch // config.train.micro_batches // shards
  micro = config.train.micro_batches
  batch = f'{p.global_batch:,} global, {rows:,} per device'
  batch += f' x {micro} micro-batches' if micro > 1 else ''
  mesh_shape = ' '.join(f'{axis}={size}' for axis, size in mesh.shape.items())
  processes = jax.process_count()
  schedule = config.optim.schedule
  return [
      f'run {run.workdir.path}: {arch.spec.title} {arch.name}, {params / 1e6:,.2f}M parameters, '
      f'{run.gflops_per_sample:.4g} GFLOPs/sample, {arch.dtype} compute',
      f'devices: {len(devices)} x {devices[0].device_kind} ({devices[0].platform}), '
      f'{processes} process{"es" if processes > 1 else ""}; mesh {mesh_shape}',
      f'batch: {batch} ({shards} data-parallel shard{"s" if shards > 1 else ""})',
      f'steps: {p.total_steps:,} ({count(p.total_samples)} samples, warmup {p.warmup_steps:,}); '
      f'{schedule} schedule, peak lr {config.optim.lr:g}; '
      f'{run.compute_gflops(p.total_samples - p.start_samples):.4g} GFLOPs in all',
      f'milestones: {_milestones(p)}',
      f'checkpoints: {run.workdir.checkpoints} (milestones kept; the 2 latest of every '
      f'{config.checkpoint.latest_every_steps:,} steps for resuming)',
      f'metrics: {_metrics(config, run.workdir)}',
  ]


def data(config: ml_collections.ConfigDict, source) -> str:
  """The source as opened: its shards, found and missing, its records, the tokenizer."""
  stats = getattr(source, 'stats', {})
  what = config.data.source
  if 'shards' in stats:
    missing = len(stats.get('missing_shards', []))
    what += f', {stats["shards"]:,} shards ({missing:,} missing)'
  return f'data: {what}, {len(source):,} records, tokenizer {config.data.tokenizer}'
