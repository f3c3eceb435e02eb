"""Evaluation rows in the run's TensorBoard, beside its training curves.

Each row becomes the scalar `eval/<task>/<metric>` at the checkpoint's step, the x axis the
training metrics use (`train.metrics`), so a task's curve lines up with the loss. Tags keep only
the characters TensorBoard allows (`text_retrieval_recall@5` is `..._recall_5`). Written through
tensorboardX, as training writes, into an event file of its own (`*.eval`): a training process
writing the same folder at the same second never shares a file with it. A run trained with
`log.tensorboard=False` gets none, and neither does a process without tensorboardX.
"""

from __future__ import annotations

import logging
import os
import re

log = logging.getLogger(__name__)

_NOT_IN_TAGS = re.compile(r'[^-/\w.]')  # what TensorBoard replaces in a tag


def tag(task: str, metric: str) -> str:
  return _NOT_IN_TAGS.sub('_', f'eval/{task}/{metric}')


class EvalBoard:
  """The event file of one evaluation of a run, opened at the first row written: an evaluation
  that adds no rows leaves no empty file behind."""

  def __init__(self, logdir: str, enabled: bool = True):
    self.logdir, self.enabled = logdir, enabled
    self.writer = None

  def write(self, step: int, task: str, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    if self.writer is None:
      try:
        from tensorboardX import SummaryWriter  # optional, as for training
      except ImportError:
        log.info('tensorboardX is not installed; evaluation rows go to results.csv only.')
        self.enabled = False
        return
      self.writer = SummaryWriter(self.logdir, filename_suffix=f'.{os.getpid()}.eval')
    for metric, value in metrics.items():
      self.writer.add_scalar(tag(task, metric), float(value), step)
    self.writer.flush()  # a task's rows are visible as soon as its CSV rows are

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()
      self.writer = None
