"""The tpu backend: the sweep runs on the TPU VM's workers, through tpu_scripts/launch.sh.

Every worker of the slice (`--worker=all`) starts `python -m experiments.launch SWEEP
--backend local` in the background on the code tpu_scripts/sync.sh copied there, so the
sweep goes on after this machine disconnects. The TPU VM is named by TPU_NAME, ZONE and
PROJECT in the environment (see tpu_scripts/README.md). On a multi-host slice SWEEP_DIR must
be a folder every worker shares (a gcsfuse mount of the bucket: tpu_scripts/setup.sh
--mount-bucket), so that all hosts see the same checkpoints and agree on what is finished.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

from experiments.sweep import REPO

SCRIPT = REPO / 'tpu_scripts' / 'launch.sh'


def command(
    sweep_file: str, sweep_dir: str, dry_run: bool = False, only: list[str] | None = None
) -> list[str]:
  path = pathlib.Path(sweep_file).resolve()
  if not path.is_relative_to(REPO):
    raise ValueError(
        f'sweep file {sweep_file!r} is outside the repository {REPO}; the TPU workers get the '
        'repository (tpu_scripts/sync.sh), so put the sweep file inside it.'
    )
  return [
      'bash',
      str(SCRIPT),
      '--sweep',
      str(path.relative_to(REPO)),
      '--out',
      sweep_dir,
      *(['--dry-run'] if dry_run else []),
      *(['--', '--only', *only] if only else []),  # the workers' launcher selects the same runs
  ]


def launch(
    sweep_file: str, sweep_dir: str, dry_run: bool = False, only: list[str] | None = None
) -> int:
  return subprocess.run(command(sweep_file, sweep_dir, dry_run, only), env=os.environ).returncode
