"""Orbax checkpoints: milestones kept forever, plus a rolling latest one for resumption.

Milestones are the scaling-law points: the samples-seen values the config lists (by default
a geometric grid, `geometric:N` = N per decade), rounded up to whole steps
(`scaling_vlm.run.milestone_samples`). Every checkpoint holds the train state and each host's
data-iterator state (grain's handler, one file per process), so a resumed run continues
sample for sample. Saves are asynchronous: the step loop goes on while orbax writes.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp
from grain import checkpoint as grain_checkpoint
from orbax.checkpoint import checkpoint_managers


class Checkpoints:
  """The run's checkpoint directory. Steps index checkpoints; samples = step x batch."""

  def __init__(self, directory: str, milestone_steps: list[int], async_save: bool = True):
    self.milestone_steps = set(milestone_steps)
    policy = checkpoint_managers.AnyPreservationPolicy(
        [checkpoint_managers.LatestN(1), checkpoint_managers.CustomSteps(milestone_steps)]
    )
    self.manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        item_names=('state', 'data'),
        options=ocp.CheckpointManagerOptions(
            preservation_policy=policy, enable_async_checkpointing=async_save, create=True
        ),
    )

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def save(self, step: int, state, data_iterator) -> None:
    self.manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain_checkpoint.CheckpointSave(data_iterator),
        ),
        force=True,
    )

  def restore(self, step: int, abstract_state, data_iterator=None):
    """The state at `step`, laid out as `abstract_state` (shapes + shardings); the data
    iterator, if given, is set to where it was."""
    args = {'state': ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      args['data'] = grain_checkpoint.CheckpointRestore(data_iterator)
    restored = self.manager.restore(step, args=ocp.args.Composite(**args))
    return restored['state']

  def close(self) -> None:
    self.manager.wait_until_finished()
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
