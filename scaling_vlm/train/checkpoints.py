"""Orbax checkpoints: milestones kept forever, plus the two latest full states for resumption.

Milestones are the scaling-law points: the samples-seen values the config lists (by default
a geometric grid, `geometric:N` = N per decade), rounded up to whole steps
(`scaling_vlm.run.milestone_samples`). A full checkpoint holds the train state and each host's
data-iterator state (grain's handler, one file per process), so a resumed run continues
sample for sample; a milestone that is no branch point holds the parameters alone
(`storage.milestone_states`), as `{'params': ...}` in its `state` item, which is all that
evaluation, export and `init.checkpoint` read. Each step records what it keeps in orbax's step
metadata. Saves are asynchronous: the step loop goes on while orbax writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from grain import checkpoint as grain_checkpoint
from orbax.checkpoint import checkpoint_managers

from scaling_vlm.train import storage
from scaling_vlm.train.storage import FULL, PARAMS_BF16

# Step metadata key: what the step keeps (storage.FULL, PARAMS, PARAMS_BF16).
STATE_KEY = 'milestone_state'
# What a step folder without that record or a train state holds: parameters written by
# `python -m scaling_vlm.convert import`, never a milestone of our training.
IMPORTED = 'imported'


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


@dataclasses.dataclass
class LatestFull:
  """Orbax preservation policy: the `n` latest checkpoints among `full` (steps holding the full
  state, updated as the run saves), so parameters-only milestones never push a resumption
  point out."""

  n: int
  full: set[int]

  def should_preserve(self, checkpoints, *, context) -> list[bool]:
    del context
    kept = sorted(c.step for c in checkpoints if c.step in self.full)[-self.n :]
    return [c.step in kept for c in checkpoints]


class Checkpoints:
  """The run's checkpoint directory. Steps index checkpoints; samples = step x batch.

  Besides the milestones it keeps the two latest full-state checkpoints: a step whose
  parameters have exploded while still finite would otherwise replace the only one to resume
  from. `states` says what each milestone keeps (`storage.milestone_states`; FULL where it
  says nothing); a finished run deletes everything but its milestones (`close`).
  """

  ROLLING = storage.ROLLING

  def __init__(
      self,
      directory: str,
      milestone_steps: list[int],
      async_save: bool = True,
      create: bool = True,
      states: Mapping[int, str] | None = None,
  ):
    self.directory = os.path.abspath(directory)
    self.milestone_steps = set(milestone_steps)
    self.states = dict(states or {})
    self.full: set[int] = set()  # steps holding the full state; the policy reads it
    policy = checkpoint_managers.AnyPreservationPolicy(
        [
            LatestFull(self.ROLLING, self.full),
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
    self.full.update(s for s in self.manager.all_steps() if is_full(self.directory, s))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def resume_steps(self) -> list[int]:
    """The steps holding the full state, in order: those a run can resume from."""
    return sorted(s for s in self.manager.all_steps() if s in self.full)

  def kept(self, step: int) -> str:
    """What the checkpoint at `step` holds: FULL, PARAMS or PARAMS_BF16 as the trainer saved it
    (checkpoints saved before the record existed were all full), or IMPORTED."""
    if is_full(self.directory, step):
      return FULL
    if not os.path.isfile(os.path.join(self.directory, str(step), '_CHECKPOINT_METADATA')):
      return IMPORTED  # written by a plain checkpointer: orbax would warn that it has no record
    # Orbax warns, through absl, that it has no handler for the `state` item whose metadata it
    # also reads; the step's record is all that is wanted here.
    with absl_errors_only():
      custom = self.manager.metadata(step).custom_metadata or {}
    return custom.get(STATE_KEY, IMPORTED)

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

  def save(self, step: int, state, data_iterator, resume_point: bool = True) -> None:
    """Starts saving `step` (in the background with async_save); a previous save that
    failed raises SaveError here. A `resume_point` (a rolling or preemption save) keeps the
    full state; otherwise the step keeps what `states` says."""
    keep = FULL if resume_point else self.states.get(step, FULL)
    if step in self.manager.all_steps():
      # A resumed run repeats the steps after its last full state, and with them the
      # parameters-only milestones it saved before: the same parameters (resuming is exact).
      if keep != FULL or step in self.full:
        return
      self.manager.delete(step)  # preempted there: the full state replaces the parameters
    if keep == FULL:
      self.full.add(step)  # before saving: the preservation policy runs in `save`
      args = ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=grain_checkpoint.CheckpointSave(data_iterator)
      )
    else:
      params = _bf16(state.params) if keep == PARAMS_BF16 else state.params
      args = ocp.args.Composite(state=ocp.args.StandardSave({'params': params}))
    with self._writing():
      self.manager.save(step, args=args, force=True, custom_metadata={STATE_KEY: keep})

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

  def close(self, finished: bool = False) -> None:
    """Waits for the last save; raises SaveError if it failed. A `finished` run never resumes,
    so its checkpoints other than the milestones are deleted once the last one is on disk."""
    try:
      with self._writing():
        self.manager.wait_until_finished()
      if finished:
        for step in self.all_steps():
          if step not in self.milestone_steps:
            self.manager.delete(step)
    finally:
      self.manager.close()


def _bf16(params):
  """Floating parameters rounded to bfloat16 (on the device, dispatched like a step)."""
  return jax.tree.map(
      lambda x: x.astype(jnp.bfloat16) if jnp.issubdtype(x.dtype, jnp.floating) else x, params
  )


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


def is_full(directory: str, step: int) -> bool:
  """Whether the checkpoint at `step` under `directory` holds a full train state: only those
  hold a data-iterator state, so only those can be resumed from."""
  return os.path.isdir(os.path.join(directory, str(step), 'data'))


@contextlib.contextmanager
def absl_errors_only():
  """Silences absl's warnings while reading checkpoints: orbax warns, through absl, that every
  `state` folder lacks the metadata file its step folder holds (and TFDS, that a dataset folder
  it looked in is empty), which is not a user's business. Errors still show."""
  absl = logging.getLogger('absl')
  level = absl.level
  absl.setLevel(logging.ERROR)
  try:
    yield
  finally:
    absl.setLevel(level)


def read_params(path: str) -> dict:
  """The parameters alone in one checkpoint's `state` directory (a trained run's, full or
  parameters-only, or an imported one), as float32 host numpy arrays in nnx's pure-dict layout:
  what export and `init.checkpoint` read, never the optimiser state beside them."""
  checkpointer = ocp.PyTreeCheckpointer()
  item = {'params': checkpointer.metadata(path).item_metadata['params']}
  # No device copy; float32 as training holds them, whatever the milestone stored (bf16).
  as_numpy = ocp.RestoreArgs(restore_type=np.ndarray, dtype=np.float32)
  restored = checkpointer.restore(
      path,
      args=ocp.args.PyTreeRestore(
          item=item, restore_args=jax.tree.map(lambda _: as_numpy, item), partial_restore=True
      ),
  )
  return to_pure(restored['params'])
