"""Orbax checkpoints: milestones kept forever, plus a rolling latest one for resumption.

Milestones are the scaling-law points: the samples-seen values the config lists (by default
a geometric grid, `geometric:N` = N per decade), rounded up to whole steps
(`scaling_vlm.run.milestone_samples`). Every checkpoint holds the train state and each host's
data-iterator state (grain's handler, one file per process), so a resumed run continues
sample for sample. Saves are asynchronous: the step loop goes on while orbax writes.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from grain import checkpoint as grain_checkpoint
from orbax.checkpoint import checkpoint_managers


class SaveError(RuntimeError):
  """A checkpoint could not be written (a full disk, a quota): the run stops at once, and the
  checkpoints already on disk are intact."""


def _describe(error: BaseException) -> str:
  """The OS error behind a failed write, in a few words: orbax wraps it in its own errors, and
  tensorstore reports it as text with the errno ('... File too large [os_error_code=27]')."""
  seen = error
  while seen is not None:
    if isinstance(seen, OSError):
      return f'{seen.strerror or seen} (errno {seen.errno}, {seen.filename or "a file"})'
    seen = seen.__cause__ or seen.__context__
  text = str(error)
  code = re.search(r"os_error_code='?(\d+)", text)
  path = re.search(r'Failed writing: "([^"]+)"', text)
  if code:
    where = path.group(1) if path else 'a file'
    return f'{os.strerror(int(code.group(1)))} (errno {code.group(1)}, writing {where})'
  return f'{type(error).__name__}: {text}'


class Checkpoints:
  """The run's checkpoint directory. Steps index checkpoints; samples = step x batch.

  Besides the milestones it keeps the two latest checkpoints: a step whose parameters have
  exploded while still finite would otherwise replace the only one to resume from.
  """

  ROLLING = 2

  def __init__(
      self,
      directory: str,
      milestone_steps: list[int],
      async_save: bool = True,
      create: bool = True,
  ):
    self.directory = os.path.abspath(directory)
    self.milestone_steps = set(milestone_steps)
    policy = checkpoint_managers.AnyPreservationPolicy(
        [
            checkpoint_managers.LatestN(self.ROLLING),
            checkpoint_managers.CustomSteps(milestone_steps),
        ]
    )
    self.manager = ocp.CheckpointManager(
        self.directory,
        item_names=('state', 'data'),
        options=ocp.CheckpointManagerOptions(
            preservation_policy=policy, enable_async_checkpointing=async_save, create=create
        ),
    )

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  @contextlib.contextmanager
  def _writing(self):
    """Turns a failed save, found now or by a background write, into one SaveError."""
    try:
      yield
    except Exception as error:  # orbax wraps the OS error in several kinds of its own
      raise SaveError(
          f'a checkpoint could not be written in {self.directory}: {_describe(error)}. The '
          f'checkpoints on disk (steps {sorted(self.all_steps())}) are intact; free space and '
          'run the same command again to resume.'
      ) from None

  def save(self, step: int, state, data_iterator) -> None:
    """Starts saving `step` (in the background with async_save); a previous save that
    failed raises SaveError here."""
    with self._writing():
      self.manager.save(
          step,
          args=ocp.args.Composite(
              state=ocp.args.StandardSave(state),
              data=grain_checkpoint.CheckpointSave(data_iterator),
          ),
          force=True,
      )

  def check(self) -> None:
    """Raises SaveError if the last background save has failed (once it is over: this never
    waits for one in progress)."""
    if not self.manager.is_saving_in_progress():
      with self._writing():
        self.manager.wait_until_finished()

  def abandon(self) -> None:
    """Closes after a failed save, whose error was raised already."""
    try:
      self.manager.close()
    except Exception:  # pylint: disable=broad-except  # the same failure, raised again
      pass

  def restore(self, step: int, abstract_state, data_iterator=None):
    """The state at `step`, laid out as `abstract_state` (shapes + shardings); the data
    iterator, if given, is set to where it was."""
    args = {'state': ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      args['data'] = grain_checkpoint.CheckpointRestore(data_iterator)
    restored = self.manager.restore(step, args=ocp.args.Composite(**args))
    return restored['state']

  def close(self) -> None:
    """Waits for the last save; raises SaveError if it failed."""
    try:
      with self._writing():
        self.manager.wait_until_finished()
    finally:
      self.manager.close()


def abstract_like(state):
  """Shapes, dtypes and shardings of `state`, the target orbax restores into."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def read_state(path: str, device: jax.Device | None = None):
  """The train state in one checkpoint's `state` directory, on a single device, whatever
  mesh or number of processes saved it. Only the tests use it (tests/test_train.py,
  tests/test_train_processes.py), to compare saved states; evaluation reads only the
  parameters, straight into their layout (`scaling_vlm.evaluate.restore`)."""
  checkpointer = ocp.StandardCheckpointer()
  metadata = checkpointer.metadata(path).item_metadata
  placement = jax.sharding.SingleDeviceSharding(device or jax.devices()[0])
  target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=placement), metadata
  )
  return checkpointer.restore(path, target)


def to_pure(tree):
  """Orbax's nested dicts -> nnx's pure dict: list indices int, no 'value' wrapper."""
  if not isinstance(tree, Mapping):
    return tree
  if set(tree) == {'value'}:
    return tree['value']
  return {int(k) if k.isdigit() else k: to_pure(v) for k, v in tree.items()}


def read_params(path: str) -> dict:
  """The parameters alone in one checkpoint's `state` directory (a trained run's or an
  imported one), as host numpy arrays in nnx's pure-dict layout: what export and
  `init.checkpoint` read, never the optimiser state beside them."""
  checkpointer = ocp.PyTreeCheckpointer()
  item = {'params': checkpointer.metadata(path).item_metadata['params']}
  as_numpy = ocp.RestoreArgs(restore_type=np.ndarray)  # no device copy
  restored = checkpointer.restore(
      path,
      args=ocp.args.PyTreeRestore(
          item=item, restore_args=jax.tree.map(lambda _: as_numpy, item), partial_restore=True
      ),
  )
  return to_pure(restored['params'])
