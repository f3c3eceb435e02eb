"""`python -m experiments.launch SWEEP_FILE --backend local|slurm|tpu --out SWEEP_DIR`.

Checks every run of the sweep (nothing starts if one is wrong), prints each run's compute and
the total (GFLOPs, accelerator-hours at --mfu on --accelerator), then runs what is not
finished: each run's workdir is SWEEP_DIR/<run name>. Launching again skips finished runs and
resumes the others. --dry-run prints the budget and what would be run or submitted. The exit
status is 1 when a run failed, was blocked or did not finish; the summary names them.

The environment the sweep file reads (SWEEP_ENV, e.g. DATA_ROOT) and every --env NAME=VALUE is
set for the sweep file here and passed on explicitly to each run's command (`env NAME=VALUE
...`) on every backend, so a TPU worker or a SLURM node sees the values this shell has.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import logging
import os
import re
import sys

from experiments import budget, local, slurm, sweep, tpu

BACKENDS = ('local', 'slurm', 'tpu')
# The variables a sweep file or the trainer reads that must have this machine's values where
# the runs start: a TPU worker's ssh session and a SLURM node (sbatch --export=NONE) begin with
# their own environment, and a sweep file read there without DATA_ROOT falls back to another
# path. Machine settings (XLA_FLAGS, the JAX_*/SLURM_*/TPU_* variables of the distributed
# setup) are the workers' own and stay out; --env passes any other. tpu_scripts/launch.sh
# holds the same list (tests/test_tpu_scripts.py checks).
SWEEP_ENV = ('DATA_ROOT',)
_ENV_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def parser() -> argparse.ArgumentParser:
  env = os.environ.get
  p = argparse.ArgumentParser(prog='python -m experiments.launch', description=__doc__)
  p.add_argument('sweep_file', help='a Python file whose runs() yields experiments.sweep.Run')
  p.add_argument('--backend', choices=BACKENDS, default='local')
  p.add_argument('--out', help='SWEEP_DIR: one workdir per run (required unless --dry-run)')
  p.add_argument('--dry-run', action='store_true', help='print, start nothing')
  p.add_argument('--parallel', type=int, default=1, help='local: runs at once (default 1)')
  p.add_argument('--only', nargs='+', metavar='GLOB', help='only runs whose name matches')
  p.add_argument(
      '--accelerator', default='v5p', help=f'for the budget: {list(budget.ACCELERATORS)}'
  )
  p.add_argument('--mfu', type=float, default=0.4, help='for the budget (default 0.4)')
  p.add_argument('--log-name', default='train.log', help='local: log file in each workdir')
  p.add_argument(
      '--env',
      action='append',
      default=[],
      metavar='NAME=VALUE',
      help='set for the sweep file and every run (repeatable); '
      f'{", ".join(SWEEP_ENV)} goes without --env too, when set here',
  )
  s = p.add_argument_group('slurm (defaults from the SBATCH_* variables sbatch reads too)')
  s.add_argument('--nodes', type=int, default=1)
  # SBATCH_GPUS_PER_NODE may name a type ('a100:4'); the count is what a task per GPU needs.
  gpus = env('SBATCH_GPUS_PER_NODE', '4').rsplit(':', 1)[-1]
  s.add_argument('--gpus-per-node', type=int, default=int(gpus) if gpus.isdigit() else 4)
  s.add_argument('--cpus-per-task', type=int)
  s.add_argument('--time', default=env('SBATCH_TIMELIMIT', '24:00:00'))
  s.add_argument('--partition', default=env('SBATCH_PARTITION', ''))
  s.add_argument('--account', default=env('SBATCH_ACCOUNT', ''))
  s.add_argument('--python', default=sys.executable, help='interpreter on the compute nodes')
  s.add_argument('--prelude', action='append', default=[], help='shell line before srun')
  s.add_argument('--sbatch-arg', action='append', default=[], help="extra '#SBATCH' option")
  t = p.add_argument_group('tpu (defaults from the variables tpu_scripts/ read too)')
  t.add_argument('--tpu-name', default=env('TPU_NAME', ''), help='the TPU VM (TPU_NAME)')
  t.add_argument('--zone', default=env('ZONE', ''), help="ZONE; default: gcloud's")
  t.add_argument('--project', default=env('PROJECT', ''), help="PROJECT; default: gcloud's")
  return p


def forwarded_env(given: list[str]) -> dict[str, str]:
  """SWEEP_ENV as this shell has it, then each --env NAME=VALUE, which wins."""
  env = {name: os.environ[name] for name in SWEEP_ENV if name in os.environ}
  for item in given:
    name, equals, value = item.partition('=')
    if not (equals and _ENV_NAME.fullmatch(name)):
      raise ValueError(f'--env {item!r} is not NAME=VALUE; e.g. --env DATA_ROOT=/mnt/gcs/data.')
    env[name] = value
  return env


@contextlib.contextmanager
def environment(env: dict[str, str]):
  """os.environ with `env` set, as the workers will have it, and back as it was after."""
  saved = {name: os.environ.get(name) for name in env}
  os.environ.update(env)
  try:
    yield
  finally:
    for name, value in saved.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value


def select(runs: list[sweep.Run], patterns: list[str] | None) -> list[sweep.Run]:
  if not patterns:
    return runs
  chosen = [r for r in runs if any(fnmatch.fnmatchcase(r.name, g) for g in patterns)]
  if not chosen:
    raise sweep.SweepError(f'--only {" ".join(patterns)} matches no run of the sweep.')
  return chosen


def main(argv: list[str] | None = None) -> int:
  args = parser().parse_args(argv)
  logging.basicConfig(level=logging.WARNING)
  try:
    env = forwarded_env(args.env)
  except ValueError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  with environment(env):  # the sweep file reads here what it will read on the workers
    return _launch(args, env)


def _launch(args: argparse.Namespace, env: dict[str, str]) -> int:
  try:
    budget.peak_flops(args.accelerator)
    budget.check_mfu(args.mfu)
    if not args.out and not args.dry_run:
      raise ValueError('--out SWEEP_DIR is required to launch (only --dry-run works without).')
    if args.parallel < 1 or (args.backend == 'tpu' and args.parallel != 1):
      raise ValueError(
          f'--parallel={args.parallel}: use 1 or more with --backend local; a TPU VM runs one '
          'run at a time (its chips belong to one process).'
      )
    if args.backend == 'slurm' and args.out:
      slurm.check_sweep_dir(args.out)  # before anything is planned or written
    if args.backend == 'tpu':  # its settings are checked before the sweep is planned
      tpu_command = tpu.command(
          args.sweep_file,
          args.out or 'SWEEP_DIR',
          tpu.Target(args.tpu_name, args.zone, args.project),
          env=env,
          dry_run=args.dry_run,
          only=args.only,
      )
    runs = sweep.load(args.sweep_file)
    # Branches are checked against their parents even when --only leaves the parents out.
    planned = sweep.expand(runs, args.out or 'SWEEP_DIR')
    names = {r.name for r in select(runs, args.only)}
    planned = [p for p in planned if p.name in names]
  except ValueError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  print('\n'.join(budget.report(planned, args.accelerator, args.mfu)))
  if args.backend == 'tpu':
    return tpu.run(tpu_command)
  if not args.out:
    return 0  # a budget-only dry run
  if args.backend == 'local':
    outcomes = local.launch(
        planned, args.out, args.parallel, log_name=args.log_name, dry_run=args.dry_run, env=env
    )
  else:
    options = slurm.Options(
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_task,
        time=args.time,
        partition=args.partition,
        account=args.account,
        python=args.python,
        prelude=tuple(args.prelude),
        sbatch_args=tuple(args.sbatch_arg),
        env=env,
    )
    outcomes = slurm.submit(planned, args.out, options, dry_run=args.dry_run)
  return summarize(outcomes)


def summarize(outcomes: list[local.Outcome]) -> int:
  counts: dict[str, int] = {}
  for outcome in outcomes:
    counts[outcome.status] = counts.get(outcome.status, 0) + 1
  print('summary: ' + ', '.join(f'{n} {status}' for status, n in counts.items()))
  problems = [o for o in outcomes if o.status in local.PROBLEMS]
  for o in problems:
    print(f'{o.status.upper()} {o.name}: {o.detail}' + (f' (log: {o.log})' if o.log else ''))
  return 1 if problems else 0


if __name__ == '__main__':
  sys.exit(main())
