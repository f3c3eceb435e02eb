"""The training loop: a config becomes a trained model and a trail of milestone checkpoints.

`setup` builds what a run trains with (sharded train state, step function, the step's
learning rates, the data pipeline, the checkpoints) and restores it from the workdir, or
branches it from a parent run's checkpoint for a cooldown; the benchmarks and tests build
with it too. `train` is the loop: check the config, write it, step, checkpoint, evaluate
(`evals`) and log until the last sample. What a run *is* (its plan, workdir and compute) lives
in `scaling_vlm.run`; what its milestones keep, in `storage`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from scaling_vlm import convert, flops, models, run as run_lib, sharding
from scaling_vlm.convert import runs as convert_runs
from scaling_vlm.data import pipeline, sources
from scaling_vlm.train import checkpoints as checkpoints_lib
from scaling_vlm.train import evals as evals_lib, losses, metrics as metrics_lib, preemption
from scaling_vlm.train import schedules, step as step_lib, storage, summary, wandb_log, xla_flags
from scaling_vlm.train.config import check_batch_fits_mesh, check_devices, check_inputs
from scaling_vlm.train.config import eval_specs, resolve_model, validate

log = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
  """The loss or the gradient became NaN or infinite."""


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


def optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The run's AdamW, at unit rate (the step takes the rate: `step.make_train_step`)."""
  o = config.optim
  return step_lib.adamw(
      b1=o.b1,
      b2=o.b2,
      eps=o.eps,
      weight_decay=o.weight_decay,
      grad_clip=o.grad_clip,
      flatten=o.flatten,
  )


def learning_rates(config: ml_collections.ConfigDict, plan: run_lib.RunPlan) -> np.ndarray:
  """Every step's learning rate, computed once: the step takes it as an argument, so runs
  that differ only in schedule share one compiled step."""
  schedule = schedules.learning_rate(
      config.optim.schedule,
      peak=config.optim.lr,
      warmup_steps=plan.warmup_steps,
      total_steps=plan.total_steps,
      floor=config.optim.lr_floor,
      cooldown_start=plan.cooldown_start,
      cooldown_shape=config.cooldown.shape,
  )
  return np.asarray(jax.vmap(schedule)(jnp.arange(plan.total_steps)), np.float32)


@dataclasses.dataclass
class Components:
  """What a run trains with, built from its config on a mesh."""

  run: run_lib.Run
  mesh: Mesh
  graphdef: nnx.GraphDef
  state: step_lib.TrainState  # restored, or branched, when the workdir or a parent has one
  train_step: Callable  # (state, batch, lr) -> (state, metrics), jitted and state-donating
  learning_rates: np.ndarray  # one per step
  source: object  # the grain random-access source
  host: object  # this host's batches (a grain iterator; its state goes into checkpoints)
  batches: pipeline.Batches  # global batches on the mesh, from `start_step` on
  checkpoints: checkpoints_lib.Checkpoints | None  # None: built without a workdir
  start_step: int

  @property
  def plan(self) -> run_lib.RunPlan:
    return self.run.plan


def setup(
    config: ml_collections.ConfigDict,
    mesh: Mesh,
    workdir: str | None = None,
    init: dict[str, np.ndarray] | None = None,
) -> Components:
  """Builds everything a run trains with on `mesh`. With a workdir, its checkpoints are
  opened and the state and data position restored from the latest one (or, for a cooldown
  branch that has none yet, from its parent's checkpoint at the branch point); a new run
  starts from `init`'s parameters if given (`init_params`)."""
  run = run_lib.Run(config, workdir or '')
  plan, arch = run.plan, run.model
  opt = optimizer(config)
  graphdef, state = create_train_state(arch, opt, mesh, config.train.seed)
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
  ckpts, start = None, 0
  if workdir is not None:
    ckpts = checkpoints_lib.Checkpoints(
        run.workdir.checkpoints,
        list(plan.milestone_steps),
        config.checkpoint.async_save,
        states=storage.milestone_states(config, plan),
    )
    state, start = _restore(config, plan, ckpts, state, host, workdir)
  if init is not None and start == 0:
    state = state.replace(params=_placed(init, state.params, arch.scan_layers))
  loss_config = losses.LossConfig(
      contrastive=config.loss.contrastive,
      contrastive_weight=config.loss.contrastive_weight,
      caption_weight=config.loss.caption_weight,
  )
  train_step = step_lib.make_train_step(
      graphdef, opt, loss_config, mesh=mesh, micro_batches=config.train.micro_batches
  )
  batches = pipeline.Batches(host, mesh, plan.global_batch, len(source), start * plan.global_batch)
  return Components(
      run=run,
      mesh=mesh,
      graphdef=graphdef,
      state=state,
      train_step=train_step,
      learning_rates=learning_rates(config, plan),
      source=source,
      host=host,
      batches=batches,
      checkpoints=ckpts,
      start_step=start,
  )


def init_params(config: ml_collections.ConfigDict, workdir: str) -> dict[str, np.ndarray] | None:
  """The parameters a new run starts from (`init.checkpoint`), read and checked against the
  run's model before anything is built; None when there is none, or the run resumes (from a
  full state: parameters-only milestones alone are no place to resume from) or is finished."""
  folder = run_lib.Workdir(workdir)
  saved = folder.saved_steps()
  resumable = any(checkpoints_lib.is_full(folder.checkpoints, s) for s in saved)
  finished = run_lib.RunPlan.from_config(config).total_steps in saved
  if not config.init.checkpoint or resumable or finished:
    return None
  return convert_runs.init_params(config.init.checkpoint, run_lib.model_config(config))


def _placed(flat: dict[str, np.ndarray], params, scanned: bool):
  """`flat` (our dotted paths) as the parameters `params` are: same tree, same shardings."""
  new = jax.tree.map(lambda x: x, params)
  nnx.replace_by_pure_dict(new, convert.nested(flat, scanned))
  return jax.tree.map(lambda value, old: jax.device_put(value, old.sharding), new, params)


def _restore(config, plan, ckpts, state, host, workdir) -> tuple[step_lib.TrainState, int]:
  """(state, step) to start from: the run's latest full-state checkpoint, the end of a finished
  run, a cooldown parent's branch point, or the fresh state at step 0. A run killed after a
  parameters-only milestone but before any full state starts over; the milestones it saved
  are kept (it would save the same parameters again)."""
  saved = ckpts.all_steps()
  if saved and all(ckpts.kept(s) == checkpoints_lib.IMPORTED for s in saved):
    raise ValueError(
        f'{workdir} holds parameters only (an imported checkpoint, step {max(saved)}), nothing '
        f'to resume; start a new run from it with --config.init.checkpoint={workdir}.'
    )
  if plan.total_steps in saved:  # finished; its last checkpoint may hold the parameters alone
    log.info('%s is finished: its last checkpoint (step %d) is on disk.', workdir, max(saved))
    return state, plan.total_steps
  resume = ckpts.resume_steps()
  if resume:
    state = ckpts.restore(resume[-1], checkpoints_lib.abstract_like(state), host)
    log.info('Resumed %s at step %d.', workdir, resume[-1])
    return state, resume[-1]
  if plan.cooldown_start is None:
    return state, 0
  parent_dir, branch = run_lib.Workdir(config.cooldown.parent), plan.cooldown_start
  saved = sorted(parent_dir.saved_steps())
  if branch not in saved:
    raise ValueError(
        f'cooldown.start={config.cooldown.start} is step {branch}, but '
        f'{config.cooldown.parent} has checkpoints at steps {saved}.'
    )
  # Read only: opening a parent never creates it (check_inputs made sure it exists).
  parent = checkpoints_lib.Checkpoints(parent_dir.checkpoints, [], async_save=False, create=False)
  if parent.kept(branch) == checkpoints_lib.IMPORTED:
    # An imported checkpoint (a released constant-LR model): its parameters, a fresh
    # optimiser, and the data from the start of our stream (its own order is not ours).
    _, _, flat = convert_runs.read_params(parent_dir.path, branch)
    state = state.replace(params=_placed(flat, state.params, config.model.scan_layers))
  else:  # a full state: check_branch_point refused a parameters-only milestone
    state = parent.restore(branch, checkpoints_lib.abstract_like(state), host)
  parent.close()
  log.info('Cooldown branch of %s from step %d.', config.cooldown.parent, branch)
  return state, branch


def check_branch_point(config: ml_collections.ConfigDict) -> None:
  """A cooldown continues its parent's optimiser and data state: a branch point where the
  parent kept its parameters alone is refused, naming the key that decides it. (An imported
  parent has no state but its parameters, and a branch starts from those.)"""
  if config.optim.schedule != 'cooldown':
    return
  parent_dir = run_lib.Workdir(config.cooldown.parent)
  step = run_lib.RunPlan.from_config(config).cooldown_start
  if step not in parent_dir.saved_steps():
    return  # _restore names the steps there are (and a resumed branch needs none)
  parent = checkpoints_lib.Checkpoints(parent_dir.checkpoints, [], async_save=False, create=False)
  kept = parent.kept(step)
  parent.close()
  if kept in (storage.PARAMS, storage.PARAMS_BF16):
    raise ValueError(
        f'cooldown.start={config.cooldown.start} is step {step} of {config.cooldown.parent}, '
        f'which kept only its parameters there (checkpoint.milestone_state={kept!r}), and a '
        'branch continues the optimiser and data state: train the parent with '
        f'--config.checkpoint.branch_points listing {config.cooldown.start} (or '
        'checkpoint.milestone_state=full).'
    )


def check(config: ml_collections.ConfigDict) -> Mesh:
  """Everything about a run that can be wrong before it starts, checked before anything is
  written: keys and ranges, the step plan, the inputs it reads, the mesh and the devices.
  Returns the mesh; raises ValueError naming what is wrong."""
  validate(config)  # and the step plan
  check_inputs(config)
  check_branch_point(config)
  wandb_log.check(config)
  if eval_specs(config) and jax.process_count() > 1:
    raise ValueError(
        f'eval.tasks evaluates within one process, but this run has {jax.process_count()}; '
        "set eval.tasks='' and evaluate its milestones with python -m scaling_vlm.evaluate."
    )
  mesh = sharding.make_mesh(**config.mesh)
  check_batch_fits_mesh(config, mesh)
  check_devices(config, jax.devices()[0].platform)
  return mesh


def claim_config(config: ml_collections.ConfigDict, workdir: run_lib.Workdir) -> None:
  """Resuming with a different config is an error, not a surprise. A workdir whose config.json
  has no checkpoint beside it holds a start that never got going (it failed or was killed
  before its first save): this config replaces it."""
  changed = workdir.config_conflicts(config)
  if changed and workdir.saved_steps():
    raise ValueError(
        f'{workdir.path} holds a run with another config (differs in: '
        f'{", ".join(changed)}); use a new --workdir to start a new run.'
    )


def _non_finite(step: int, ckpts: checkpoints_lib.Checkpoints) -> NonFiniteError:
  steps = [s for s in ckpts.resume_steps() if s < step]
  if not steps:
    where = 'no checkpoint was saved before it'
  elif len(steps) == 1:
    where = f'resume from the checkpoint at step {steps[0]}'
  else:
    # Parameters can explode while still finite: the latest checkpoint may hold them, so the
    # one before it is kept too.
    where = (
        f'the checkpoint at step {steps[-2]} is the safe one to resume from (step {steps[-1]},'
        f' the latest, may already hold diverged parameters: delete it to resume before it)'
    )
  return NonFiniteError(
      f'non-finite loss or gradient at or before step {step}; nothing after the last finite '
      f'state was saved, and {where}. Consider a lower optim.lr or optim.grad_clip in a new '
      'workdir.'
  )


def train(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) the run in `workdir`; returns the last logged metrics."""
  if threading.current_thread() is threading.main_thread():
    preemption.install()  # the CLI has already; a library caller gets it here
  config = resolve_model(config)  # model.name=FILE.json: the file's model into the config
  mesh = check(config)
  init = init_params(config, workdir)  # a checkpoint of another model is refused here
  if xla_flags.missing(config.xla.gpu_flags):
    log.warning(
        'xla.gpu_flags=%s is not in XLA_FLAGS (%s): it only takes effect through '
        '`python -m scaling_vlm.train`, which sets it before JAX starts.',
        config.xla.gpu_flags,
        ' '.join(xla_flags.missing(config.xla.gpu_flags)),
    )
  folder = run_lib.Workdir(workdir)
  primary = jax.process_index() == 0  # on multi-host runs, the primary holds the lock
  with folder.locked() if primary else contextlib.nullcontext():
    claim_config(config, folder)
    if primary:  # what the run will do, at once: building and compiling take minutes
      lines = summary.plan(config, run_lib.Run(config, workdir), mesh)
      log.info('\n'.join([*lines, 'building the train state and opening the data...']))
    setup_start = time.perf_counter()
    parts = setup(config, mesh, workdir, init)
    if primary:
      ready = time.perf_counter() - setup_start
      log.info('%s (ready in %.1f s)', summary.data(config, parts.source), ready)
    if primary:
      folder.write_config(config)  # the run (re)starts now, with these `eval.*` settings
    evals = evals_lib.TrainingEvals(config, parts.run, mesh, parts.graphdef)
    try:
      return _loop(config, parts, workdir, evals)
    except checkpoints_lib.SaveError:
      parts.checkpoints.abandon()  # stop the background writers; the error says the rest
      raise
    finally:
      evals.close(stop=True)  # at once after an error; _loop closed it after a good end


def _loop(
    config: ml_collections.ConfigDict,
    parts: Components,
    workdir: str,
    evals: evals_lib.TrainingEvals,
) -> dict:
  """Steps from `parts.start_step` to the end (or a preemption), logging, checkpointing and
  evaluating."""
  plan, state, batches, ckpts = parts.plan, parts.state, parts.batches, parts.checkpoints
  writer = metrics_lib.MetricsWriter(workdir, config.log.tensorboard, parts.start_step, config)
  peak = flops.peak_flops(jax.devices()[0])
  train_flops = parts.run.train_flops_per_sample
  total_samples = plan.total_samples

  logged: dict = {}
  window_start, window_steps, data_wait = time.perf_counter(), 0, 0.0
  all_finite = True
  step, preempted = parts.start_step, False
  if step:
    evals.catch_up()  # a resumed run's milestones that missed their evaluation
  with jax.set_mesh(parts.mesh):
    while step < plan.total_steps:
      wait_start = time.perf_counter()
      batch = next(batches)
      data_wait += time.perf_counter() - wait_start
      compiling = step == parts.start_step and jax.process_index() == 0
      if compiling:
        log.info('compiling the train step...')
        compile_start = time.perf_counter()
      state, step_metrics = parts.train_step(state, batch, parts.learning_rates[step])
      if compiling:  # one wait, for the first step only
        jax.block_until_ready(step_metrics)
        log.info('compiled in %.1f s (and ran the first step)', time.perf_counter() - compile_start)
      # A device-side AND: checking it costs no host sync until we log or save.
      all_finite = step_metrics['finite'] & all_finite
      step += 1
      window_steps += 1
      preempted = preemption.reached(step)
      final = step == plan.total_steps
      rolling = step % config.checkpoint.latest_every_steps == 0
      save = final or preempted or rolling or step in plan.milestone_steps
      evaluate = evals.due(step)
      # An evaluation, as a save, needs finite parameters: the check waits for this step.
      if save or evaluate or step % config.log.every_steps == 0:
        if not bool(all_finite):
          ckpts.close()
          raise _non_finite(step, ckpts)
        ckpts.check()  # a background save that failed (a full disk) stops the run now
        elapsed = time.perf_counter() - window_start
        samples_per_s = window_steps * plan.global_batch / elapsed
        logged = {
            **{f'train/{k}': float(v) for k, v in jax.device_get(step_metrics).items()},
            **batches.metrics(),
            **sources.source_metrics(parts.source),
            'perf/samples_per_s': samples_per_s,
            'perf/step_s': elapsed / window_steps,
            'perf/data_wait_fraction': data_wait / elapsed,
            'perf/eta_s': (total_samples - batches.samples_seen) / samples_per_s,
        }
        if peak:
          logged['perf/mfu'] = train_flops * samples_per_s / (peak * jax.device_count())
        if evals.steps:
          logged.update(evals.metrics())
        writer.write(step, logged)
        log.info('step %d | %s', step, metrics_lib.progress_line(logged, total_samples))
        window_start, window_steps, data_wait = time.perf_counter(), 0, 0.0
      if save:  # a rolling or preemption save is a resumption point: the full state
        ckpts.save(step, state, parts.host, resume_point=rolling or preempted)
      if evaluate:  # after the save: both read the parameters before the next step donates them
        evals.start(step, state.params)
      if preempted:
        log.warning('Preempted at step %d; checkpoint saved, exiting.', step)
        break
  evals.close(stop=preempted)  # the last evaluation's rows, unless the run must exit now
  ckpts.close(finished=step == plan.total_steps)
  writer.close()
  return logged
