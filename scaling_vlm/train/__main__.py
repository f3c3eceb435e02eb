"""Train one model: `python -m scaling_vlm.train --config=configs/clip.py:tiny --workdir=DIR`.

Override any key on the command line: `--config.train.samples=1.28e9 --config.optim.lr=1e-3`.
Starting the same command on a workdir that holds a run resumes it where it stopped.

Multi-process (TPU pod slices, multi-node GPU): `jax.distributed` is initialised from the
environment (TPU metadata, SLURM, or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
JAX_PROCESS_ID); `--coordinator/--num_processes/--process_id` set it explicitly, e.g. for
several CPU processes on localhost.
"""

from __future__ import annotations

import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/<family>.py:<preset>')
_WORKDIR = flags.DEFINE_string('workdir', None, 'where the run lives; resumed if it exists')
_COORDINATOR = flags.DEFINE_string('coordinator', None, 'host:port of process 0')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'processes in the run')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'this process index')
flags.mark_flags_as_required(['config', 'workdir'])


def initialize_distributed() -> None:
  import jax

  explicit = _COORDINATOR.value is not None
  from_env = any(
      v in os.environ
      for v in (
          'JAX_COORDINATOR_ADDRESS',
          'SLURM_JOB_ID',
          'TPU_WORKER_HOSTNAMES',
          'MEGASCALE_COORDINATOR_ADDRESS',
      )
  )
  if explicit:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif from_env:
    jax.distributed.initialize()


def main(argv: list[str]) -> None:
  del argv
  # Our progress lines at INFO; orbax's and grain's absl chatter only from WARNING up.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger('scaling_vlm').setLevel(logging.INFO)
  # XLA reads XLA_FLAGS when its backend starts, so the preset goes in before anything else
  # (jax.distributed included) touches a device.
  from scaling_vlm.train import xla_flags

  try:
    xla_flags.apply(_CONFIG.value.xla.gpu_flags)
  except ValueError as error:
    sys.exit(f'error: {error}')
  initialize_distributed()
  from scaling_vlm import run  # pylint: disable=import-outside-toplevel
  from scaling_vlm.train import trainer  # after jax.distributed: it touches devices

  trainer.train(_CONFIG.value, _WORKDIR.value)
  if not run.Run(_CONFIG.value, _WORKDIR.value).finished():
    # Preempted: the checkpoint is saved, but the run is not done. A non-zero status keeps
    # schedulers (SLURM's afterok, launchers) from taking it for a finished run.
    sys.exit(run.EXIT_INCOMPLETE)


def run() -> None:
  # Unknown `--config.x.y` keys get a helpful error instead of ml_collections' AttributeError.
  from scaling_vlm.train.config import check_override_keys, load_config_file

  spec = next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--config=')), None)
  if spec:
    try:
      check_override_keys(load_config_file(spec), sys.argv)
    except ValueError as error:
      sys.exit(f'error: {error}')
  app.run(main)


if __name__ == '__main__':
  run()
