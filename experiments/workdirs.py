"""What a run's workdir says: finished, started, or holding another run.

A run is finished when its final checkpoint (step = train.samples / batch) is on disk: the
trainer saves it last, and orbax makes the step folder appear only once the save is complete
(it writes into a temporary folder and renames it), so no marker file is needed.
"""

from __future__ import annotations

import json
import os

from scaling_vlm.train.config import changed_keys

NEW, PARTIAL, DONE, CONFLICT = 'new', 'partial', 'done', 'conflict'


def saved_steps(workdir: str) -> set[int]:
  folder = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(folder):
    return set()
  return {int(name) for name in os.listdir(folder) if name.isdigit()}


def has_checkpoint(workdir: str, samples: int, global_batch: int) -> bool:
  return samples // global_batch in saved_steps(workdir)


def conflicts(workdir: str, config) -> list[str]:
  """Keys where the config saved in `workdir` differs from `config` (the trainer refuses to
  resume such a run; a finished one must not be mistaken for this one either)."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return []
  with open(path) as file:
    saved = json.load(file)
  # The trainer's own comparison: keys added to the code since the run started, at their
  # defaults, are no conflict.
  return changed_keys(saved, json.loads(config.to_json_best_effort()))


def state(planned, workdir: str) -> str:
  if conflicts(workdir, planned.config):
    return CONFLICT
  if planned.plan.total_steps in saved_steps(workdir):
    return DONE
  if os.path.exists(os.path.join(workdir, 'config.json')):
    return PARTIAL
  return NEW
