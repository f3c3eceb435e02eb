"""Evaluation during training, as big_vision's `config.evals` and open_clip's `--val-frequency`.

`eval.tasks` (the specs of `python -m scaling_vlm.evaluate --tasks`) are scored on the
parameters in memory at each milestone, or every `eval.every` samples, through the evaluation's
own `RunEvaluation.evaluate_model`: the rows go to WORKDIR/results.csv and its TensorBoard
exactly as `python -m scaling_vlm.evaluate --workdir` writes them, so fitting sees them and a
later evaluation skips those (run, samples, task) triples. At a milestone kept in bf16
(`checkpoint.milestone_state=params_bf16`) the parameters are rounded as the checkpoint holds
them, so the rows are the checkpoint's.

The loop does not wait for it (`eval.background`): at an evaluation step the parameters are
copied on the device, one dispatched program (the next step donates the originals), and a thread
scores the copy while the steps go on. The loop waits only when an evaluation is due while the
previous one still runs (so each due step is evaluated); `perf/eval_wait_s` in the metrics is
that wait, `perf/eval_s` how long the last evaluation took. The copy and the evaluation's
batches take device memory beside training's. With `eval.background=False` the loop evaluates
between steps, without the copy. A failed task is logged and skipped; training goes on.

A resumed run first catches up (`eval.every=milestones`): milestones on disk without rows, where
a kill or preemption came between a save and its evaluation, are read back and evaluated as
`evaluate` would, in the same thread. Changing `eval.*` does not stop a run from resuming, so
relaunching a finished run with `eval.tasks` evaluates its milestones.
"""

from __future__ import annotations

import logging
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling_vlm import run as run_lib
from scaling_vlm.evaluate import milestones, progress as progress_lib
from scaling_vlm.train import storage
from scaling_vlm.train.config import eval_every, eval_specs

log = logging.getLogger(__name__)


def eval_steps(config: ml_collections.ConfigDict, plan: run_lib.RunPlan) -> set[int]:
  """The steps evaluated: the milestones, or every step that reaches a multiple of `eval.every`
  samples, and the last; none without `eval.tasks`."""
  if not eval_specs(config):
    return set()
  every = eval_every(config, plan)
  if every is None:
    return set(plan.milestone_steps)
  batch = plan.global_batch
  crossed = range(1, plan.total_steps + 1)
  return {s for s in crossed if s * batch // every > (s - 1) * batch // every} | {plan.total_steps}


@jax.jit
def _copy(params):
  return jax.tree.map(jnp.copy, params)


@jax.jit
def _bf16_rounded(params):
  return jax.tree.map(
      lambda x: x.astype(jnp.bfloat16).astype(x.dtype)
      if jnp.issubdtype(x.dtype, jnp.floating)
      else x,
      params,
  )


class TrainingEvals:
  """The evaluations of one training process: `due(step)`, then `start(step, params)`."""

  def __init__(
      self,
      config: ml_collections.ConfigDict,
      run: run_lib.Run,
      mesh: jax.sharding.Mesh,
      graphdef: nnx.GraphDef,
  ):
    self.steps = eval_steps(config, run.plan)
    self.at_milestones = str(config.eval.every).strip() == 'milestones'
    self.background = config.eval.background
    states = storage.milestone_states(config, run.plan)
    self.rounded = {s for s, kept in states.items() if kept == storage.PARAMS_BF16}
    self.mesh, self.graphdef = mesh, graphdef
    self.evaluation = None
    if self.steps:  # reads the run's config.json, which the trainer has written by now
      self.evaluation = milestones.RunEvaluation(
          run.workdir.path,
          eval_specs(config),
          config.eval.synthetic_size,
          config.eval.batch_size,
          None,  # pretrain_dataset from the config, as `evaluate` without --pretrain_dataset
          milestones.Summary(),
          mesh,
      )
    self.thread: threading.Thread | None = None
    self.stop = threading.Event()
    self.waited = 0.0  # seconds the loop spent on evaluations since `metrics` last read it
    self.last_seconds: float | None = None  # how long the latest finished evaluation took

  def due(self, step: int) -> bool:
    return step in self.steps

  def catch_up(self) -> None:
    """The milestones on disk that lack rows, read from their checkpoints (a resumed run)."""
    if not self.steps or not self.at_milestones:
      return
    self._launch(self._catch_up)

  def _catch_up(self) -> None:
    try:
      self.evaluation.plan(progress_lib.Progress())
      if any(self.evaluation.todo.values()):
        log.info('evaluating the milestones on disk that have no rows yet')
      self.evaluation.evaluate(progress_lib.Progress(), self.stop)
    except Exception as error:  # pylint: disable=broad-except  # training goes on without it
      log.warning('evaluating the saved milestones failed: %s: %s', type(error).__name__, error)
    finally:
      self.evaluation.model = None  # its parameters are not needed again: free the device
    for where in self.evaluation.summary.skipped:
      log.warning('evaluating the saved milestones: %s SKIPPED: %s', where[2], where[3])

  def start(self, step: int, params) -> None:
    """Evaluates `params`, the train state's at `step`: on a device copy in a thread, or now."""
    begin = time.perf_counter()
    self.wait()  # one at a time: the previous one's rows first
    if step in self.rounded:
      params = _bf16_rounded(params)  # a new array, as the copy
    elif self.background:
      params = _copy(params)
    self._launch(self._evaluate, step, params)
    self.waited += time.perf_counter() - begin

  def _launch(self, target, *args) -> None:
    """`target(*args)` in the evaluation thread, or now (`eval.background=False`)."""
    self.wait()
    if self.background:
      self.thread = threading.Thread(target=target, args=args, name='eval', daemon=True)
      self.thread.start()
    else:
      target(*args)

  def wait(self) -> None:
    if self.thread is not None:
      self.thread.join()
      self.thread = None

  def metrics(self) -> dict[str, float]:
    """`perf/eval_wait_s` (the loop's wait since the last call) and `perf/eval_s`."""
    out = {'perf/eval_wait_s': self.waited}
    if self.last_seconds is not None:
      out['perf/eval_s'] = self.last_seconds
    self.waited = 0.0
    return out

  def close(self, stop: bool = False) -> None:
    """Waits for the evaluation in progress; `stop` (a preemption, an error) ends it after its
    current task: `python -m scaling_vlm.evaluate` does the rest later."""
    if stop:
      self.stop.set()
    self.wait()
    if self.evaluation is not None:
      self.evaluation.close()

  def _evaluate(self, step: int, params) -> None:
    begin = time.perf_counter()
    summary = self.evaluation.summary
    skipped = len(summary.skipped)
    try:
      with jax.set_mesh(self.mesh):
        model = nnx.merge(self.graphdef, params)
        written = self.evaluation.evaluate_model(step, model, stop=self.stop)
    except Exception as error:  # pylint: disable=broad-except  # training goes on without it
      log.warning('evaluation at step %d failed: %s: %s', step, type(error).__name__, error)
      return
    self.last_seconds = time.perf_counter() - begin
    for where in summary.skipped[skipped:]:
      log.warning('evaluation at step %d: %s SKIPPED: %s', step, where[2], where[3])
    if written:
      shown = '; '.join(f'{task} {progress_lib.shown(m)}' for task, m in written.items())
      log.info('eval at step %d: %s (%.1f s)', step, shown, self.last_seconds)
