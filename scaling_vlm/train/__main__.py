"""Train one model: `python -m scaling_vlm.train --config=configs/clip.py:tiny --workdir=DIR`.

Override any key on the command line: `--config.train.samples=1.28e9 --config.optim.lr=1e-3`.
`--print_config` lists every key (value, default, allowed values, meaning) and exits.
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
_PRINT_CONFIG = flags.DEFINE_bool(
    'print_config',
    False,
    'print every config key with its value, default, allowed values and meaning; then exit',
)
flags.mark_flag_as_required('config')
flags.register_multi_flags_validator(
    ['workdir', 'print_config'],
    lambda values: values['workdir'] is not None or values['print_config'],
    message='--workdir is required: the folder the run lives in (not with --print_config).',
)


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


def _fail(error: BaseException, status: int) -> None:
  """One line for what a user can cause, not a traceback."""
  print(f'error: {error}', file=sys.stderr)
  sys.exit(status)


def main(argv: list[str]) -> None:
  del argv
  # Our progress lines at INFO; orbax's and grain's absl chatter only from WARNING up.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger('scaling_vlm').setLevel(logging.INFO)
  # A failed save makes orbax log an error with a traceback from each of its writer threads;
  # the trainer reports it once, as one line (checkpoints.SaveError).
  logging.getLogger('absl').addFilter(
      lambda record: record.levelno < logging.ERROR or '/orbax/' not in record.pathname
  )
  from scaling_vlm import run as run_lib  # pylint: disable=import-outside-toplevel
  from scaling_vlm.train import config as config_lib  # pylint: disable=import-outside-toplevel
  from scaling_vlm.train import xla_flags  # pylint: disable=import-outside-toplevel

  if _PRINT_CONFIG.value:
    from scaling_vlm.train import config_help  # pylint: disable=import-outside-toplevel

    try:
      print(config_help.describe(_CONFIG.value, _config_spec()), flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
      os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return
  try:  # what the config alone can tell, before JAX starts
    config = config_lib.resolve_model(_CONFIG.value)  # a model file's numbers into the config
    config_lib.validate(config)
  except ValueError as error:
    _fail(error, 2)
  # XLA reads XLA_FLAGS when its backend starts, so the preset goes in before anything else
  # (jax.distributed included) touches a device.
  xla_flags.apply(config.xla.gpu_flags)
  initialize_distributed()
  from scaling_vlm.train import checkpoints, trainer  # after jax.distributed: it touches devices

  try:
    trainer.train(config, _WORKDIR.value)
  except ValueError as error:  # inputs, the mesh, a workdir holding another run
    _fail(error, 2)
  except (run_lib.WorkdirBusy, trainer.NonFiniteError) as error:
    _fail(error, 1)
  except checkpoints.SaveError as error:
    print(f'error: {error}', file=sys.stderr, flush=True)
    # Now, without the interpreter's shutdown: the failed save's writes, still pending in
    # tensorstore, would each print a traceback into orbax's closed event loop. What the run
    # keeps is on disk already (metrics are written line by line, checkpoints are atomic).
    os._exit(1)  # pylint: disable=protected-access
  if not run_lib.Run(config, _WORKDIR.value).finished():
    # Preempted: the checkpoint is saved, but the run is not done. A non-zero status keeps
    # schedulers (SLURM's afterok, launchers) from taking it for a finished run.
    sys.exit(run_lib.EXIT_INCOMPLETE)


def _config_spec() -> str | None:
  return next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--config=')), None)


def run() -> None:
  # SIGTERM first: a preemption that comes while the run is still starting must still end it
  # as incomplete (75), not kill it (143).
  from scaling_vlm.train import preemption  # pylint: disable=import-outside-toplevel

  preemption.install()
  # Unknown `--config.x.y` keys get a helpful error instead of ml_collections' AttributeError.
  from scaling_vlm.train.config import check_override_keys, load_config_file

  spec = _config_spec()
  if spec:
    try:
      check_override_keys(load_config_file(spec), sys.argv)
    except ValueError as error:
      _fail(error, 2)
  app.run(main)


if __name__ == '__main__':
  run()
