"""The training loop: a config becomes a trained model and a trail of milestone checkpoints.

Read top to bottom: derive the run's step counts from the config, build the mesh, the
sharded train state and the data pipeline, resume from the workdir (or branch from a parent
run's checkpoint for a cooldown), then step, checkpoint and log until the last sample.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from scaling_vlm import flops, models, sharding
from scaling_vlm.data import pipeline, sources
from scaling_vlm.train import checkpoints as checkpoints_lib
from scaling_vlm.train import losses, metrics as metrics_lib, schedules, step as step_lib, xla_flags
from scaling_vlm.train.config import (
    changed_keys,
    check_batch_fits_mesh,
    check_devices,
    parse_count,
    validate,
)

log = logging.getLogger(__name__)

CONFIG_FILE = 'config.json'
# The train CLI's exit status when it stopped early with its state saved (SIGTERM, preemption):
# EX_TEMPFAIL, "run it again"; 0 is kept for a finished run.
EXIT_INCOMPLETE = 75


class NonFiniteError(RuntimeError):
  """The loss or the gradient became NaN or infinite."""


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
      milestones = tuple(
          s // batch for s in checkpoints_lib.milestone_samples(spec, total_samples, batch)
      )
    if warmup_steps >= total_steps:
      raise ValueError(
          f'train.warmup={config.train.warmup} is not shorter than '
          f'train.samples={config.train.samples}; shorten the warmup.'
      )
    return cls(batch, total_steps, warmup_steps, milestones, cooldown_start)


def finished(config: ml_collections.ConfigDict, workdir: str) -> bool:
  """Whether the run's last checkpoint is on disk (orbax renames a step folder into place
  only once its save is complete)."""
  last = RunPlan.from_config(config).total_steps
  return os.path.isdir(os.path.join(workdir, 'checkpoints', str(last)))


def model_config(config: ml_collections.ConfigDict) -> models.ModelConfig:
  m = config.model
  impl = None if m.attention_impl == 'auto' else m.attention_impl
  return models.get_config(
      m.name, dtype=m.dtype, attention_impl=impl, scan_layers=m.scan_layers, remat=m.remat
  )


def create_train_state(
    arch: models.ModelConfig, optimizer: optax.GradientTransformation, mesh, seed: int
) -> tuple[nnx.GraphDef, step_lib.TrainState]:
  """Model and optimiser state, each created directly in its sharded layout."""
  model = sharding.create_sharded(lambda: models.build(arch, seed=seed), mesh)
  graphdef, params = nnx.split(model)
  replicated = NamedSharding(mesh, PartitionSpec())
  abstract = jax.eval_shape(lambda p: step_lib.create_state(p, optimizer), params)
  param_shardings = jax.tree.map(lambda x: x.sharding, params)
  if all(s.is_fully_replicated for s in jax.tree.leaves(param_shardings)):
    # Nothing to line up; and optax.flatten's state has no per-parameter layout to map.
    opt_shardings = jax.tree.map(lambda _: replicated, abstract.opt_state)
  else:
    opt_shardings = optax.tree_map_params(
        optimizer,
        lambda _, s: s,
        abstract.opt_state,
        param_shardings,
        transform_non_params=lambda _: replicated,
    )
  shardings = step_lib.TrainState(step=replicated, params=param_shardings, opt_state=opt_shardings)
  state = jax.jit(lambda p: step_lib.create_state(p, optimizer), out_shardings=shardings)(params)
  return graphdef, state


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes the resolved config; resuming with a different one is an error, not a surprise."""
  path = os.path.join(workdir, CONFIG_FILE)
  resolved = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    changed = changed_keys(saved, resolved)
    if changed:
      raise ValueError(
          f'{workdir} holds a run with another config (differs in: '
          f'{", ".join(changed)}); use a new --workdir to start a new run.'
      )
    return
  if jax.process_index() == 0:
    with open(path, 'w') as f:
      json.dump(resolved, f, indent=2)


class Preemption:
  """SIGTERM (TPU preemption, SLURM time limit): save at an agreed step, then exit.

  Across processes, jax's preemption sync point agrees on the step; a single process
  catches the signal itself."""

  def __init__(self):
    self.signalled = False
    if jax.process_count() == 1:
      signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    log.warning('SIGTERM: saving a checkpoint and exiting.')
    self.signalled = True

  def reached(self, step: int) -> bool:
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.signalled


def train(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) the run in `workdir`; returns the last logged metrics."""
  validate(config)
  plan = RunPlan.from_config(config)
  os.makedirs(workdir, exist_ok=True)
  write_config(config, workdir)
  mesh = sharding.make_mesh(**config.mesh)
  check_batch_fits_mesh(config, mesh)
  check_devices(config, jax.devices()[0].platform)
  if xla_flags.missing(config.xla.gpu_flags):
    log.warning(
        'xla.gpu_flags=%s is not in XLA_FLAGS (%s): it only takes effect through '
        '`python -m scaling_vlm.train`, which sets it before JAX starts.',
        config.xla.gpu_flags,
        ' '.join(xla_flags.missing(config.xla.gpu_flags)),
    )
  arch = model_config(config)

  schedule = schedules.learning_rate(
      config.optim.schedule,
      peak=config.optim.lr,
      warmup_steps=plan.warmup_steps,
      total_steps=plan.total_steps,
      floor=config.optim.lr_floor,
      cooldown_start=plan.cooldown_start,
      cooldown_shape=config.cooldown.shape,
  )
  o = config.optim
  optimizer = step_lib.adamw(
      b1=o.b1,
      b2=o.b2,
      eps=o.eps,
      weight_decay=o.weight_decay,
      grad_clip=o.grad_clip,
      flatten=o.flatten,
  )
  loss_config = losses.LossConfig(
      contrastive=config.loss.contrastive,
      contrastive_weight=config.loss.contrastive_weight,
      caption_weight=config.loss.caption_weight,
  )
  graphdef, state = create_train_state(arch, optimizer, mesh, config.train.seed)

  source = sources.make_source(config.data, arch.vision.image_size)
  host = pipeline.host_batches(
      source,
      tokenizer=sources.make_tokenizer(config.data, arch.text),
      image_size=arch.vision.image_size,
      global_batch=plan.global_batch,
      seed=config.data.seed,
      num_workers=config.data.num_workers,
      read_threads=config.data.read_threads,
      strict=config.data.strict,
      max_bad_fraction=config.data.max_bad_fraction,
  )

  ckpts = checkpoints_lib.Checkpoints(
      os.path.join(workdir, 'checkpoints'), list(plan.milestone_steps), config.checkpoint.async_save
  )
  start = ckpts.latest_step()
  if start is not None:
    state = ckpts.restore(start, checkpoints_lib.abstract_like(state), host)
    log.info('Resumed %s at step %d.', workdir, start)
  elif plan.cooldown_start is not None:
    parent = checkpoints_lib.Checkpoints(
        os.path.join(config.cooldown.parent, 'checkpoints'), [], async_save=False
    )
    if plan.cooldown_start not in parent.all_steps():
      raise ValueError(
          f'cooldown.start={config.cooldown.start} is step {plan.cooldown_start}, but '
          f'{config.cooldown.parent} has checkpoints at steps {sorted(parent.all_steps())}.'
      )
    state = parent.restore(plan.cooldown_start, checkpoints_lib.abstract_like(state), host)
    parent.close()
    start = plan.cooldown_start
    log.info('Cooldown branch of %s from step %d.', config.cooldown.parent, start)
  else:
    start = 0

  train_step = step_lib.make_train_step(
      graphdef,
      optimizer,
      loss_config,
      mesh=mesh,
      micro_batches=config.train.micro_batches,
  )
  # Every step's rate, computed once: the step takes it as an argument (see make_train_step).
  learning_rates = np.asarray(jax.vmap(schedule)(jnp.arange(plan.total_steps)), np.float32)
  batches = pipeline.Batches(host, mesh, plan.global_batch, len(source), start * plan.global_batch)
  writer = metrics_lib.MetricsWriter(workdir, config.log.tensorboard)
  preemption = Preemption()
  peak = flops.peak_flops(jax.devices()[0])
  train_flops = flops.train_flops(arch)
  total_samples = plan.total_steps * plan.global_batch

  logged: dict = {}
  window_start, window_steps, data_wait = time.perf_counter(), 0, 0.0
  all_finite = True
  step = start
  with jax.set_mesh(mesh):
    while step < plan.total_steps:
      wait_start = time.perf_counter()
      batch = next(batches)
      data_wait += time.perf_counter() - wait_start
      state, step_metrics = train_step(state, batch, learning_rates[step])
      # A device-side AND: checking it costs no host sync until we log or save.
      all_finite = step_metrics['finite'] & all_finite
      step += 1
      window_steps += 1
      preempted = preemption.reached(step)
      final = step == plan.total_steps
      save = (
          final
          or preempted
          or step in plan.milestone_steps
          or (step % config.checkpoint.latest_every_steps == 0)
      )
      if save or step % config.log.every_steps == 0:
        if not bool(all_finite):
          ckpts.close()
          raise NonFiniteError(
              f'Non-finite loss or gradient at or before step {step}; the state was not '
              f'updated and the last checkpoint (step {ckpts.latest_step()}) is intact.'
          )
        elapsed = time.perf_counter() - window_start
        samples_per_s = window_steps * plan.global_batch / elapsed
        logged = {
            **{f'train/{k}': float(v) for k, v in jax.device_get(step_metrics).items()},
            **batches.metrics(),
            **sources.source_metrics(source),
            'perf/samples_per_s': samples_per_s,
            'perf/step_s': elapsed / window_steps,
            'perf/data_wait_fraction': data_wait / elapsed,
            'perf/eta_s': (total_samples - batches.samples_seen) / samples_per_s,
        }
        if peak:
          logged['perf/mfu'] = train_flops * samples_per_s / (peak * jax.device_count())
        writer.write(step, logged)
        log.info('step %d | %s', step, metrics_lib.progress_line(logged, total_samples))
        window_start, window_steps, data_wait = time.perf_counter(), 0, 0.0
      if save:
        ckpts.save(step, state, host)
      if preempted:
        log.warning('Preempted at step %d; checkpoint saved, exiting.', step)
        break
  ckpts.close()
  writer.close()
  return logged
