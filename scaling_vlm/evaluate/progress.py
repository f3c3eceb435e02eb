"""Progress of an evaluation: its (checkpoint, task) units done of those planned, with an ETA.

On a terminal the last line is a bar redrawn in place, each event's line printed above it;
elsewhere (a log file, a pipe, SLURM's output) each event is one plain line, since a bar redrawn
with carriage returns is one unreadable line there. Every line says how far along the whole
evaluation is and when it should end.

The ETA counts each remaining task at the time it last took on that run (else on another run,
else the mean of the tasks seen), plus a checkpoint read for each checkpoint not read yet. A
task's first run also reads its images and compiles, so early estimates err long.
"""

from __future__ import annotations

import datetime
import shutil
import time
from collections.abc import Callable, Iterable
from typing import TextIO

BAR_WIDTH = 24


def _isatty(stream) -> bool:
  try:
    return stream.isatty()
  except (AttributeError, ValueError):  # no such method, or a closed stream
    return False


def duration(seconds: float | None) -> str:
  return '?' if seconds is None else str(datetime.timedelta(seconds=round(seconds)))


class Progress:
  """Reports an evaluation's events to `stream` (None: nowhere), as a bar where `live`
  (default: the stream is a terminal), else as lines.

  A checkpoint is a label naming it (`run @ 160 samples`); `plan` says which tasks it will
  run, and `read`, `finished` and `dropped` report what became of them."""

  def __init__(
      self,
      stream: TextIO | None = None,
      live: bool | None = None,
      clock: Callable[[], float] = time.monotonic,
  ):
    self.stream, self.clock = stream, clock
    self.live = _isatty(stream) if live is None else live
    self.todo: dict[str, list[str]] = {}  # checkpoint -> its tasks not run yet
    self.runs: dict[str, str] = {}  # checkpoint -> its run, whose tasks take alike
    self.unread: set[str] = set()  # checkpoints whose parameters are not read yet
    self.done = 0
    self.task_seconds: dict[tuple[str, str], float] = {}  # (run, task) -> its latest time
    self.by_task: dict[str, float] = {}  # task -> its latest time on any run
    self.read_seconds: float | None = None  # the latest checkpoint read
    self.start = clock()
    self.current = ''

  @property
  def total(self) -> int:
    return self.done + sum(len(tasks) for tasks in self.todo.values())

  def plan(self, checkpoint: str, tasks: Iterable[str], run: str = '') -> None:
    tasks = list(tasks)
    if tasks:
      self.todo[checkpoint], self.runs[checkpoint] = tasks, run
      self.unread.add(checkpoint)

  def now(self, what: str) -> None:
    """What is being done now: shown on the bar (lines are for what is done)."""
    self.current = what
    self._draw()

  def note(self, text: str) -> None:
    self._line(text)

  def read(self, checkpoint: str, seconds: float) -> None:
    self.unread.discard(checkpoint)
    self.read_seconds = seconds
    tasks = len(self.todo.get(checkpoint, ()))
    self._line(f'{checkpoint}: checkpoint read in {seconds:.1f} s; {_count(tasks, "task")} to run')

  def finished(self, checkpoint: str, task: str, seconds: float, metrics: dict) -> None:
    self._remove(checkpoint, task)
    self.done += 1
    self.task_seconds[(self.runs.get(checkpoint, ''), task)] = self.by_task[task] = seconds
    self._line(f'{checkpoint}: {task} {shown(metrics)} ({seconds:.1f} s)')

  def dropped(self, checkpoint: str, task: str | None, reason: str) -> None:
    """A task (None: every task) of a checkpoint that will not run; it leaves the total."""
    for name in [task] if task else list(self.todo.get(checkpoint, ())):
      self._remove(checkpoint, name)
    self._line(f'{checkpoint}: {task or "checkpoint"} SKIPPED: {reason}')

  def forget(self, checkpoints: Iterable[str], task: str) -> None:
    """A task dropped from later checkpoints too, without a line each (its data failed to
    load, which the line of the first one said)."""
    for checkpoint in checkpoints:
      self._remove(checkpoint, task)

  def eta(self) -> float | None:
    """Seconds until every planned unit is done; None before any task has run."""
    if not self.by_task:
      return None
    typical = sum(self.by_task.values()) / len(self.by_task)
    left = sum(
        self.task_seconds.get((self.runs[checkpoint], task), self.by_task.get(task, typical))
        for checkpoint, tasks in self.todo.items()
        for task in tasks
    )
    reads = sum(1 for checkpoint in self.unread if self.todo.get(checkpoint))
    return left + reads * (self.read_seconds or 0.0)

  def status(self) -> str:
    elapsed = duration(self.clock() - self.start)
    return f'{self.done}/{self.total} tasks, {elapsed} elapsed, ETA {duration(self.eta())}'

  def close(self) -> None:
    """Clears the bar, so what is printed next starts on a clean line."""
    if self.live and self.stream is not None:
      self.stream.write('\r\x1b[K')
      self.stream.flush()

  def _remove(self, checkpoint: str, task: str) -> None:
    tasks = self.todo.get(checkpoint, [])
    if task in tasks:
      tasks.remove(task)
    if not tasks:
      self.todo.pop(checkpoint, None)

  def _line(self, text: str) -> None:
    if self.stream is None:
      return
    if self.live:
      self.stream.write(f'\r\x1b[K{text}\n')
      self._draw()
    else:
      self.stream.write(f'[{self.status()}] {text}\n')
      self.stream.flush()

  def _draw(self) -> None:
    if self.stream is None or not self.live:
      return
    total = self.total
    filled = round(BAR_WIDTH * self.done / total) if total else BAR_WIDTH
    bar = '#' * filled + '-' * (BAR_WIDTH - filled)
    text = f'[{bar}] {self.status()} | {self.current}'
    width = shutil.get_terminal_size().columns - 1
    self.stream.write(f'\r\x1b[K{text[:width]}')
    self.stream.flush()


def shown(metrics: dict) -> str:
  """'acc1 0.2917 acc5 1.0000 tasks 4': counts as integers, scores to 4 places."""
  return ' '.join(f'{name} {number(value)}' for name, value in metrics.items())


def _count(n: int, noun: str) -> str:
  return f'{n} {noun}' + ('' if n == 1 else 's')


def number(value) -> str:
  return str(value) if isinstance(value, int) else f'{value:.4f}'
