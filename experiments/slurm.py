"""The slurm backend: one sbatch script per run (SWEEP_DIR/<run>/slurm.sbatch), submitted
with `sbatch`.

Each job starts one task per GPU with `srun`; in each task `jax.distributed.initialize()`
(scaling_vlm/train/__main__.py calls it when SLURM_JOB_ID is set) takes the coordinator
from SLURM_STEP_NODELIST, the process count and index from SLURM_NTASKS/SLURM_PROCID and the
task's GPU from SLURM_LOCALID. Output is appended to SWEEP_DIR/<run>/train.log. At the time
limit SLURM sends SIGTERM first (`--signal`), the trainer saves a checkpoint, and launching
the sweep again resubmits what is unfinished, which resumes.

Finished runs are skipped, and so are runs whose job (named <sweep>.<run>) is still in the
queue. A cooldown branch whose parent has not reached the branch point waits for the
parent's job (`--dependency=afterok`).
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping

from experiments import workdirs
from experiments.local import BLOCKED, CONFLICT, FAILED, SKIPPED, Outcome, command
from experiments.sweep import REPO
from scaling_vlm.run import Workdir

SUBMITTED, QUEUED = 'submitted', 'queued'
SCRIPT = 'slurm.sbatch'


@dataclasses.dataclass(frozen=True)
class Options:
  nodes: int = 1
  gpus_per_node: int = 4
  cpus_per_task: int | None = None
  time: str = '24:00:00'
  partition: str = ''
  account: str = ''
  python: str = sys.executable  # the interpreter on the compute nodes (a shared filesystem)
  prelude: tuple[str, ...] = ()  # shell lines before srun, e.g. 'module load cuda'
  sbatch_args: tuple[str, ...] = ()  # more #SBATCH options, e.g. '--qos=normal'
  # The sweep's environment (experiments.launch's SWEEP_ENV and --env), set in srun's command:
  # a site may start jobs without the submitting shell's variables (sbatch --export=NONE).
  env: Mapping[str, str] = dataclasses.field(default_factory=dict)
  signal_s: int = 300  # SIGTERM this long before the time limit: time to save

  def merged(self, resources) -> Options:
    """Per-run resources of the sweep over the command line's defaults."""
    return dataclasses.replace(self, **dict(resources))


# Characters an #SBATCH value may hold unquoted; sbatch reads the rest of the line itself (no
# shell), splitting at blanks unless the value is in double quotes.
_PLAIN = re.compile(r'[\w@%+=:,./-]*')


def check_sweep_dir(sweep_dir: str) -> None:
  """A sweep folder sbatch scripts can name: no line break (it would end an #SBATCH or comment
  line, and the rest would run as a command) and no double quote (it ends a quoted value)."""
  bad = sorted({c for c in sweep_dir if c in '\n\r"'})
  if bad:
    raise ValueError(
        f'--out {sweep_dir!r} holds {", ".join(map(repr, bad))}, which an sbatch script cannot '
        'name; choose a folder without line breaks or double quotes.'
    )


def directive_value(value: str) -> str:
  """`value` as an #SBATCH option's value: as it is, or in double quotes if it has blanks."""
  return value if _PLAIN.fullmatch(value) else f'"{value}"'


def job_name(sweep_dir: str, run_name: str) -> str:
  return f'{os.path.basename(os.path.abspath(sweep_dir))}.{run_name}'


def script(planned, sweep_dir: str, options: Options) -> str:
  """The sbatch script of one run."""
  o = options.merged(planned.run.resources)
  workdir = os.path.join(os.path.abspath(sweep_dir), planned.name)
  directives = [
      f'--job-name={directive_value(job_name(sweep_dir, planned.name))}',
      f'--nodes={o.nodes}',
      f'--ntasks-per-node={o.gpus_per_node}',  # one process per GPU, as JAX's SLURM support
      f'--gpus-per-node={o.gpus_per_node}',
      *([f'--cpus-per-task={o.cpus_per_task}'] if o.cpus_per_task else []),
      f'--time={o.time}',
      *([f'--partition={directive_value(o.partition)}'] if o.partition else []),
      *([f'--account={directive_value(o.account)}'] if o.account else []),
      # '%' starts a file-name pattern (%j, %x) in --output; '%%' is a literal one.
      f'--output={directive_value(f"{workdir}/train.log".replace("%", "%%"))}',
      '--open-mode=append',  # a resubmitted run adds to its log
      f'--signal=TERM@{o.signal_s}',
      *o.sbatch_args,
  ]
  train = shlex.join(command(planned, workdir, python=o.python, env=o.env))
  return '\n'.join(
      [
          '#!/bin/bash',
          *(f'#SBATCH {d}' for d in directives),
          f'# Run {planned.name} of sweep {os.path.abspath(sweep_dir)}, written by experiments.launch.',
          '# Submitting it again resumes the run from its latest checkpoint.',
          'set -euo pipefail',
          f'cd {shlex.quote(str(REPO))}',
          'export PYTHONUNBUFFERED=1',
          *o.prelude,
          '# jax.distributed.initialize() reads SLURM_STEP_NODELIST, SLURM_NTASKS, SLURM_PROCID',
          '# and SLURM_LOCALID in every task.',
          f'srun --kill-on-bad-exit=1 {train}',
          '',
      ]
  )


def queued_jobs() -> dict[str, str]:
  """{job name: job id} of this user's pending and running jobs."""
  result = subprocess.run(
      ['squeue', '--noheader', f'--user={getpass.getuser()}', '--format=%j %i'],
      capture_output=True,
      text=True,
      check=True,
  )
  return dict(line.split(maxsplit=1) for line in result.stdout.splitlines() if line.strip())


def submit(planned: list, sweep_dir: str, options: Options, dry_run: bool = False, echo=print):
  """Submits what is neither finished nor queued; returns one Outcome per run."""
  check_sweep_dir(sweep_dir)
  queued = {} if dry_run else queued_jobs()
  jobs: dict[str, str] = {}  # run name -> job id (submitted now, or already queued)
  outcomes: dict[str, Outcome] = {}
  # Parents before branches, so a branch can depend on its parent's job.
  for p in sorted(planned, key=lambda p: bool(p.run.parent)):
    workdir = os.path.join(os.path.abspath(sweep_dir), p.name)
    name = job_name(sweep_dir, p.name)
    state = workdirs.state(p, workdir)
    if state == workdirs.DONE:
      outcomes[p.name] = Outcome(p.name, SKIPPED, 'already finished')
      continue
    if state == workdirs.CONFLICT:
      keys = ', '.join(Workdir(workdir).config_conflicts(p.config))
      outcomes[p.name] = Outcome(p.name, CONFLICT, f'{workdir} holds another config ({keys})')
      continue
    if name in queued:
      jobs[p.name] = queued[name]
      outcomes[p.name] = Outcome(p.name, QUEUED, f'job {queued[name]} is in the queue')
      continue
    dependency = []
    if p.run.parent:
      parent_dir = os.path.join(os.path.abspath(sweep_dir), p.run.parent)
      if p.plan.cooldown_start not in Workdir(parent_dir).saved_steps():
        if p.run.parent not in jobs:
          why = outcomes.get(p.run.parent)
          outcomes[p.name] = Outcome(
              p.name,
              BLOCKED,
              f'parent {p.run.parent} is not queued' + (f' ({why.status})' if why else ''),
          )
          continue
        dependency = [f'--dependency=afterok:{jobs[p.run.parent]}', '--kill-on-invalid-dep=yes']
    path = os.path.join(workdir, SCRIPT)
    cmd = ['sbatch', '--parsable', *dependency, path]
    text = script(p, sweep_dir, options)
    if dry_run:
      echo(f'# {path}\n{text}$ {shlex.join(cmd)}\n')
      jobs[p.name] = f'<job id of {name}>'
      outcomes[p.name] = Outcome(p.name, 'pending', 'dry run')
      continue
    os.makedirs(workdir, exist_ok=True)
    with open(path, 'w') as file:
      file.write(text)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
      outcomes[p.name] = Outcome(p.name, FAILED, f'sbatch: {result.stderr.strip()}', path)
      continue
    jobs[p.name] = result.stdout.strip().split(';')[0]  # --parsable: 'id' or 'id;cluster'
    outcomes[p.name] = Outcome(p.name, SUBMITTED, f'job {jobs[p.name]}', f'{workdir}/train.log')
    echo(f'submitted {p.name}: job {jobs[p.name]}')
  return [outcomes[p.name] for p in planned]
