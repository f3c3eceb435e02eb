"""What a run's workdir says before a launch: new, partial, done, or holding another run.

A run is done when its final checkpoint (step = train.samples / batch) is on disk: the trainer
saves it last, and orbax makes a step folder appear only once its save is complete, so no
marker file is needed (`scaling_vlm.run.Workdir.saved_steps`).
"""

from __future__ import annotations

from scaling_vlm.run import Workdir

NEW, PARTIAL, DONE, CONFLICT = 'new', 'partial', 'done', 'conflict'


def state(planned, workdir: str) -> str:
  """NEW, PARTIAL, DONE, or CONFLICT: the workdir holds a run with another config (the
  trainer refuses to resume it, and a finished one must not be taken for this one)."""
  folder = Workdir(workdir)
  if folder.config_conflicts(planned.config):
    return CONFLICT
  if planned.plan.total_steps in folder.saved_steps():
    return DONE
  if folder.has_config():
    return PARTIAL
  return NEW
