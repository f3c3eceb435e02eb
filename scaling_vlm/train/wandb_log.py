"""Weights & Biases, optional: `log.wandb=True` sends a run's metrics rows there too.

wandb is no dependency (`pip install wandb`, or the `wandb` extra) and is imported only by a
run that asks for it; one that asks without it installed is refused before it starts. Offline
(`log.wandb_mode=offline`, or WANDB_MODE=offline with the default `auto`) keeps the run under
WORKDIR/wandb for `wandb sync`. A workdir keeps one W&B run across restarts: its id is saved in
WORKDIR/wandb_id, and a resumed run continues it (`resume='allow'`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import uuid

import ml_collections

from scaling_vlm.run import Workdir

# `log.wandb_mode`: 'auto' lets wandb decide (WANDB_MODE, else online).
MODES = ('auto', 'online', 'offline')


def installed() -> bool:
  if 'wandb' in sys.modules:
    return sys.modules['wandb'] is not None  # None: an import that is blocked
  return importlib.util.find_spec('wandb') is not None


def check(config: ml_collections.ConfigDict) -> None:
  """A run that logs to W&B needs wandb here; checked before anything is written."""
  if config.log.wandb and not installed():
    raise ValueError(
        'log.wandb=True needs the wandb package, which is not installed: pip install wandb '
        "(or the 'wandb' extra of scaling-vlm), or set log.wandb=False."
    )


def run_id(workdir: Workdir) -> str:
  """The W&B run id of this workdir: made once, then read back, so a resumed run (even one
  whose workdir moved) continues the same W&B run."""
  path = os.path.join(workdir.path, 'wandb_id')
  if os.path.isfile(path):
    with open(path) as file:
      return file.read().strip()
  # W&B ids: at most 64 characters, none of / \ # ? % :
  made = f'{re.sub(r"[^A-Za-z0-9._-]", "-", workdir.run_id)[:48]}-{uuid.uuid4().hex[:8]}'
  os.makedirs(workdir.path, exist_ok=True)
  with open(f'{path}.tmp', 'w') as file:
    file.write(made + '\n')
  os.replace(f'{path}.tmp', path)
  return made


class WandbLogger:
  """One W&B run per workdir, fed the same rows as the metrics log."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    import wandb  # pylint: disable=import-outside-toplevel  # optional: see the docstring

    folder = Workdir(workdir)
    log = config.log
    options = dict(
        project=log.wandb_project,
        entity=log.wandb_entity or None,
        name=folder.run_id,
        id=run_id(folder),
        resume='allow',
        dir=folder.path,
        config=json.loads(config.to_json_best_effort()),
    )
    if log.wandb_mode != 'auto':
      options['mode'] = log.wandb_mode
    self.run = wandb.init(**options)
    # A resumed run repeats the steps after its last checkpoint; W&B already holds them (a
    # resume is bit-identical) and refuses steps below its own, so they are not sent again.
    self.next_step = int(getattr(self.run, 'step', 0) or 0)

  def log(self, step: int, metrics: dict[str, float]) -> None:
    if step >= self.next_step:
      self.run.log(dict(metrics), step=step)
      self.next_step = step + 1

  def close(self) -> None:
    self.run.finish()
