"""Run metrics: JSON lines in the workdir, TensorBoard event files, W&B, and a progress line.

Only process 0 writes. TensorBoard goes through tensorboardX when it is installed (it needs
no TensorFlow); Weights & Biases when the run asks for it (`log.wandb`, `wandb_log`). The
JSON lines are always there and are what tools read.
"""

from __future__ import annotations

import json
import logging
import os
import time

import jax
import ml_collections

from scaling_vlm.run import Workdir
from scaling_vlm.train import wandb_log

log = logging.getLogger(__name__)


class MetricsWriter:
  """The run's metrics from `start_step` on. A resumed run repeats the steps between its last
  checkpoint and where it stopped, so what was logged after `start_step` is cut first: the
  log holds each step once, in order, and so does TensorBoard (`purge_step`)."""

  def __init__(
      self,
      workdir: str,
      tensorboard: bool = True,
      start_step: int = 0,
      config: ml_collections.ConfigDict | None = None,
  ):
    """`config`: the run's, for W&B (`log.wandb`), which also records it."""
    self.enabled = jax.process_index() == 0
    self.path = Workdir(workdir).metrics
    self.tensorboard = None
    self.wandb = None
    # Also from step 0: a run killed before its first checkpoint starts over, and so does its log.
    if self.enabled and os.path.exists(self.path):
      _truncate(self.path, start_step)
    if self.enabled and tensorboard:
      try:
        from tensorboardX import SummaryWriter  # optional: pip install tensorboardX
      except ImportError:
        log.info('tensorboardX is not installed; writing JSON lines only.')
      else:
        # purge_step drops the events at and after it that an earlier process wrote.
        self.tensorboard = SummaryWriter(
            Workdir(workdir).tensorboard, purge_step=start_step + 1
        )
    if self.enabled and config is not None and config.log.get('wandb', False):
      self.wandb = wandb_log.WandbLogger(config, workdir)

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps({'step': step, 'time': time.time(), **metrics}) + '\n')
    if self.tensorboard is not None:
      for name, value in metrics.items():
        self.tensorboard.add_scalar(name, value, step)
      self.tensorboard.flush()
    if self.wandb is not None:
      self.wandb.log(step, metrics)

  def close(self) -> None:
    if self.tensorboard is not None:
      self.tensorboard.close()
    if self.wandb is not None:
      self.wandb.close()


def _truncate(path: str, step: int) -> None:
  """Keeps the rows up to `step` (and drops a line an interrupted write cut short)."""
  with open(path) as file:
    lines = file.readlines()
  kept = [l for l in lines if l.strip() and l.endswith('\n') and json.loads(l)['step'] <= step]
  if len(kept) == len(lines):
    return
  with open(f'{path}.tmp', 'w') as file:
    file.writelines(kept)
  os.replace(f'{path}.tmp', path)


def read(workdir: str) -> list[dict]:
  """Every metrics row of a run, in order."""
  with open(Workdir(workdir).metrics) as f:
    return [json.loads(line) for line in f if line.strip()]


def progress_line(metrics: dict[str, float], total_samples: int) -> str:
  eta = metrics.get('perf/eta_s', float('nan'))
  mfu = metrics.get('perf/mfu')
  parts = [
      f"samples {metrics['data/samples_seen']:,.0f}/{total_samples:,.0f}",
      f"loss {metrics['train/loss']:.4f}",
      f"{metrics['perf/samples_per_s']:,.1f} samples/s",
      f"data wait {metrics['perf/data_wait_fraction']:.0%}",
      f'MFU {mfu:.1%}' if mfu is not None else 'MFU n/a',
      f'ETA {eta / 60:.1f} min',
  ]
  return ' | '.join(parts)
