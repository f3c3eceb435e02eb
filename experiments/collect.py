"""`python -m experiments.collect SWEEP_DIR [--tasks ...] [--out results.csv]`.

Evaluates every milestone checkpoint of every run in SWEEP_DIR (through `python -m
scaling_vlm.evaluate`, which appends to each run's results.csv and skips what is already
there), then merges all runs' rows into one results table, the table `python -m fitting fit
--results` reads. --no-eval only merges. The exit status is the evaluation's: 1 when a
checkpoint or task was skipped (the evaluation's summary says why).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

from scaling_vlm.evaluate import __main__ as evaluate_cli
from scaling_vlm import run
from scaling_vlm.evaluate import mesh, tasks


def run_dirs(sweep_dir: str) -> list[str]:
  """The training runs in SWEEP_DIR: its folders that hold a resolved config."""
  if not os.path.isdir(sweep_dir):
    raise ValueError(f'{sweep_dir!r} is not a directory.')
  names = sorted(os.listdir(sweep_dir))
  dirs = [os.path.join(sweep_dir, n) for n in names]
  return [d for d in dirs if run.Workdir(d).has_config()]


def merge(workdirs: list[str], out: str) -> int:
  """Concatenates the runs' results.csv into `out`; returns the number of rows."""
  rows = 0
  tmp = f'{out}.tmp'
  with open(tmp, 'w', newline='') as file:
    writer = csv.DictWriter(file, run.RESULT_COLUMNS)
    writer.writeheader()
    for workdir in workdirs:
      path = run.Workdir(workdir).results
      if not os.path.exists(path):
        continue
      with open(path, newline='') as run_file:
        reader = csv.DictReader(run_file)
        if tuple(reader.fieldnames or ()) != run.RESULT_COLUMNS:
          raise ValueError(
              f'{path} has columns {reader.fieldnames}, not {list(run.RESULT_COLUMNS)}.'
          )
        for row in reader:
          writer.writerow(row)
          rows += 1
  os.replace(tmp, out)  # a reader never sees half a table
  return rows


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog='python -m experiments.collect', description=__doc__)
  p.add_argument('sweep_dir')
  p.add_argument('--tasks', nargs='+', default=list(tasks.DEFAULT_TASKS), help='as evaluate')
  p.add_argument('--out', help='merged table (default SWEEP_DIR/results.csv)')
  p.add_argument('--no-eval', action='store_true', help='merge the existing rows only')
  p.add_argument('--synthetic_size', type=int, default=1000)
  p.add_argument('--batch_size', type=int, default=256)
  p.add_argument('--mesh', default=mesh.DEFAULT, help='as evaluate: e.g. fsdp=8 for big models')
  args = p.parse_args(argv)
  try:
    workdirs = run_dirs(args.sweep_dir)
  except ValueError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  if not workdirs:
    print(f'error: {args.sweep_dir} holds no training runs (folders with a config.json).')
    return 2
  status = 0
  if not args.no_eval:
    status = evaluate_cli.main(
        [
            '--workdir',
            *workdirs,
            '--tasks',
            *args.tasks,
            '--synthetic_size',
            str(args.synthetic_size),
            '--batch_size',
            str(args.batch_size),
            '--mesh',
            args.mesh,
        ]
    )
  out = args.out or run.Workdir(args.sweep_dir).results
  rows = merge(workdirs, out)
  print(f'{rows} rows from {len(workdirs)} runs -> {out}')
  return status


if __name__ == '__main__':
  sys.exit(main())
