"""SIGTERM (TPU preemption, SLURM's time limit): save at an agreed step, then exit.

The train CLI installs the handler first thing (`install`), before it loads or checks the
config, so a signal that arrives while the run is still starting is not lost: the run saves
after its first step and exits as incomplete (75). Across processes, JAX's preemption sync
point agrees on the step instead (`jax.distributed` registers its own handler).
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)

_received = threading.Event()


def _handle(signum, frame) -> None:
  del signum, frame
  log.warning('SIGTERM: saving a checkpoint and exiting.')
  _received.set()


def install() -> None:
  """Catch SIGTERM from now on (idempotent)."""
  signal.signal(signal.SIGTERM, _handle)


def reached(step: int) -> bool:
  """Whether the run should save and stop after `step`."""
  import jax  # pylint: disable=import-outside-toplevel  # the CLI installs before JAX starts

  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel

    return multihost_utils.reached_preemption_sync_point(step)
  return _received.is_set()
