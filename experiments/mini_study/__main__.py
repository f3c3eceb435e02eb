"""The paper in miniature: `python -m experiments.mini_study --out DIR [--quick]`.

Trains ladders of tiny CLIP and MaMMUT models on the synthetic world, and of CLIP on a
noisier version of it (and CLIMP, with `--procedures ... climp`): constant LR with milestone
checkpoints, cosine runs to check that cheap method, and a second seed of the cheapest runs to
measure seed noise. Evaluates every milestone, fits scaling laws with held-out points and
compares architectures and datasets, writing `DIR/results.csv`, `DIR/figures/*.png` and
`DIR/report.md`. No data, download or accelerator needed; rerunning resumes (finished runs and
evaluated checkpoints are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from experiments import collect
from experiments.mini_study import analysis, curves, plan, report, runner
from fitting import table


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m experiments.mini_study',
      description=__doc__.split('\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument('--out', required=True, help='study directory (created; reruns resume)')
  parser.add_argument(
      '--quick', action='store_true', help='a smoke version: two sizes, a few dozen steps each'
  )
  parser.add_argument(
      '--procedures',
      nargs='+',
      default=list(plan.DEFAULT_PROCEDURES),
      choices=sorted(plan.PROCEDURES),
      help=f'procedures to compare (default: {" ".join(plan.DEFAULT_PROCEDURES)})',
  )
  parser.add_argument('--workers', type=int, default=2, help='runs trained at once (default 2)')
  parser.add_argument(
      '--seed',
      type=int,
      default=0,
      help='seeds every run (initialisation, data order): a replicate, in its own --out',
  )
  args = parser.parse_args(argv)
  if len(args.procedures) < 2:
    parser.error(f'--procedures needs at least two to compare, got {args.procedures}')
  if args.workers < 1:
    parser.error(f'--workers must be >= 1, got {args.workers}')

  budget = plan.QUICK if args.quick else plan.FULL
  runs = plan.make_runs(budget, args.procedures, args.seed)
  os.makedirs(args.out, exist_ok=True)
  start = time.perf_counter()
  print(f'mini study: {len(runs)} runs into {args.out}', flush=True)

  done = []

  def progress(outcome: runner.Outcome) -> None:
    done.append(outcome)
    status = f'FAILED: {outcome.error}' if outcome.error else 'ok'
    print(
        f'[{len(done):2d}/{len(runs)}] {outcome.name}: {outcome.rows} new rows, {status} '
        f'(train {outcome.train_s:.0f} s, eval {outcome.eval_s:.0f} s in all) '
        f'| {time.perf_counter() - start:.0f} s elapsed',
        flush=True,
    )

  def heartbeat(positions: dict[str, tuple[int, int]]) -> None:
    running = [f'{name} {seen}/{total}' for name, (seen, total) in positions.items()]
    print(
        f'      {len(done)}/{len(runs)} done; in progress (samples): '
        f'{", ".join(running) or "starting"} | {time.perf_counter() - start:.0f} s elapsed',
        flush=True,
    )

  outcomes = runner.run_all(runs, args.out, budget.eval_size, args.workers, progress, heartbeat)
  trained = time.perf_counter() - start
  merged = os.path.join(args.out, 'results.csv')
  if not collect.merge([os.path.join(args.out, 'runs', r.name) for r in runs], merged):
    raise RuntimeError(f'no run in {args.out}/runs has evaluation rows; see the errors above')
  results = table.read_results(merged)
  largest = plan.largest_models(budget, args.procedures)
  fits = analysis.analyse(
      results,
      args.procedures,
      largest,
      budget.form,
      budget.bootstrap,
      os.path.join(args.out, 'figures'),
  )
  learning_curves = os.path.join(args.out, 'figures', 'learning_curves.png')
  # One line per model: the study's own seed, not the replicates that measure its noise.
  own_seed = results[results['seed'] == args.seed] if 'seed' in results else results
  curves.figure(
      analysis.with_procedure(own_seed, args.procedures), args.procedures, learning_curves
  )
  timings = {
      f'training + evaluation (wall, {args.workers} workers, this invocation)': trained,
      'training (sum over runs, all invocations)': sum(o.train_s for o in outcomes),
      'evaluation (sum over runs, all invocations)': sum(o.eval_s for o in outcomes),
      'fitting, figures and report': time.perf_counter() - start - trained,
      'total (this invocation)': time.perf_counter() - start,
  }
  path = os.path.join(args.out, 'report.md')
  report.write(path, args.procedures, fits, runs, outcomes, timings, budget, learning_curves)
  errors = report.held_out_errors(fits)
  summary = {
      'report': path,
      'results': merged,
      'figures': [e['figure'] for e in fits if e['figure']] + [learning_curves],
      'problems': [p for e in fits for p in e['problems']],
      # 'a vs b' -> winner, or null where undecided at this budget (seed noise included).
      'verdicts': {e['task']: report.decisions(e) for e in fits},
      'held_out_mean_abs_relative_error': float(sum(errors) / len(errors)) if errors else None,
      'held_out_missing': report.held_out_missing(fits),
      'failed_runs': [o.name for o in outcomes if o.error],
      'seconds': timings,
  }
  with open(os.path.join(args.out, 'summary.json'), 'w') as file:
    json.dump(summary, file, indent=2)
  for entry in fits:
    print('\n'.join([f'{entry["task"]} ({entry["description"]}):', *report.verdict(entry)]))
  print(json.dumps(summary, indent=2))
  return 1 if summary['failed_runs'] else 0


if __name__ == '__main__':
  sys.exit(main())
