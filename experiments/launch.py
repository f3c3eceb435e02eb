"""`python -m experiments.launch SWEEP_FILE --backend local|slurm|tpu --out SWEEP_DIR`.

Checks every run of the sweep (nothing starts if one is wrong), prints each run's compute and
the total (GFLOPs, accelerator-hours at --mfu on --accelerator), then runs what is not
finished: each run's workdir is SWEEP_DIR/<run name>. Launching again skips finished runs and
resumes the others. --dry-run prints the budget and what would be run or submitted. The exit
status is 1 when a run failed, was blocked or did not finish; the summary names them.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import os
import sys

from experiments import budget, local, slurm, sweep, tpu

BACKENDS = ('local', 'slurm', 'tpu')


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
  return p


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
    try:
      return tpu.launch(args.sweep_file, args.out or 'SWEEP_DIR', args.dry_run, args.only)
    except ValueError as error:
      print(f'error: {error}', file=sys.stderr)
      return 2
  if not args.out:
    return 0  # a budget-only dry run
  if args.backend == 'local':
    outcomes = local.launch(
        planned, args.out, args.parallel, log_name=args.log_name, dry_run=args.dry_run
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
