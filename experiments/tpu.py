"""The tpu backend: the sweep runs on the TPU VM's workers, through tpu_scripts/launch.sh.

Every worker of the slice (`--worker=all`) starts `python -m experiments.launch SWEEP
--backend local` in the background on the code tpu_scripts/sync.sh copied there, so the
sweep goes on after this machine disconnects. The TPU VM is --tpu-name, --zone and --project
(by default TPU_NAME, ZONE and PROJECT, as for tpu_scripts; see tpu_scripts/README.md). The
environment the sweep reads (experiments.launch's SWEEP_ENV and --env) goes to the workers as
`launch.sh --env NAME=VALUE`: their ssh sessions start without this shell's variables. On a
multi-host slice SWEEP_DIR must be a folder every worker shares (a gcsfuse mount of the
bucket: tpu_scripts/setup.sh --mount-bucket), so that all hosts see the same checkpoints and
agree on what is finished.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
from collections.abc import Mapping

from experiments.sweep import REPO

SCRIPT = REPO / 'tpu_scripts' / 'launch.sh'


@dataclasses.dataclass(frozen=True)
class Target:
  """The TPU VM; an empty zone or project is gcloud's configured one."""

  name: str
  zone: str = ''
  project: str = ''


def command(
    sweep_file: str,
    sweep_dir: str,
    target: Target,
    env: Mapping[str, str] | None = None,
    dry_run: bool = False,
    only: list[str] | None = None,
) -> list[str]:
  """The tpu_scripts/launch.sh command that starts the sweep on every worker."""
  path = pathlib.Path(sweep_file).resolve()
  if not path.is_relative_to(REPO):
    raise ValueError(
        f'sweep file {sweep_file!r} is outside the repository {REPO}; the TPU workers get the '
        'repository (tpu_scripts/sync.sh), so put the sweep file inside it.'
    )
  if not target.name:
    raise ValueError('TPU_NAME is not set: pass --tpu-name or export TPU_NAME.')
  settings = [('--tpu-name', target.name), ('--zone', target.zone), ('--project', target.project)]
  return [
      'bash',
      str(SCRIPT),
      '--sweep',
      str(path.relative_to(REPO)),
      '--out',
      sweep_dir,
      *(f'{flag}={value}' for flag, value in settings if value),
      # A sweep spans every host of the slice, whatever WORKER logs.sh or ssh.sh were given.
      '--worker=all',
      *(f'--env={name}={value}' for name, value in (env or {}).items()),
      *(['--dry-run'] if dry_run else []),
      *(['--', '--only', *only] if only else []),  # the workers' launcher selects the same runs
  ]


def run(cmd: list[str]) -> int:
  return subprocess.run(cmd).returncode
