"""`python -m fitting fit|compare|plot|optimal|paper`: scaling laws from a results table.

Every subcommand but `paper` reads a table, keeps one task/metric's points that pass the
paper's filters, selects procedures with --where COLUMN=VALUE, takes each one's frontier and
fits it; `paper` refits every group of laws of the paper from its released files into a
report (`fitting.paper`).
The fitting is `fitting.procedure`'s; this shell only turns flags into its arguments, prints
a readable report (`fitting.text`) and writes the JSON with --json. Compiled solver programs
are kept in a persistent cache between runs (`fitting.cache`; --no-compile-cache).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

from fitting import annealing, cache, checks, compare, filters, forms, optimal, procedure
from fitting import paper, paper_groups, report, schedules, solver, table, text

READERS = {
    'ours': table.read_results,
    'paper-csv': table.import_paper_csv,
    'paper-parquet': table.import_paper_parquet,
}


def _where(text: str) -> tuple[str, str]:
  if '=' not in text:
    raise argparse.ArgumentTypeError(f'expected COLUMN=VALUE, got {text!r}')
  column, value = text.split('=', 1)
  return column, value


def _data_flags(parser: argparse.ArgumentParser, task_required: bool = True) -> None:
  add = parser.add_argument
  add('--results', required=True, help='results table: CSV, CSV.gz or Parquet')
  add(
      '--format',
      choices=sorted(READERS),
      default='ours',
      help="table layout: 'ours' (the long results table), the paper's wide all_results.csv.gz "
      "('paper-csv') or its per-run Parquet ('paper-parquet'); default: %(default)s",
  )
  add('--task', required=task_required, help='downstream task, e.g. imagenet1k')
  add('--metric', default='acc1', help='metric of the task; error = 1 - metric (default acc1)')
  add(
      '--where',
      type=_where,
      action='append',
      default=[],
      metavar='COLUMN=VALUE',
      help='keep rows whose COLUMN equals VALUE (repeatable), e.g. --where arch=clip',
  )
  add(
      '--x',
      default='compute_gflops',
      choices=['compute_gflops', 'samples_seen'],
      help='x axis (default %(default)s)',
  )
  add('--max-x', type=float, default=filters.MAX_X, help='drop x above this (default 1e12)')
  add('--min-x', type=float, default=filters.MIN_X, help='drop x below this (default 1e6)')
  add(
      '--max-samples',
      type=float,
      default=filters.MAX_SAMPLES,
      help='drop checkpoints with more samples seen (default 1e10)',
  )
  add(
      '--frontier',
      choices=sorted(filters.FRONTIERS),
      default='pareto_bin',
      help="frontier rule (default %(default)s, the paper's)",
  )
  add(
      '--form',
      choices=sorted(forms.FORMS),
      default='saturation_both',
      help='law to fit (default %(default)s)',
  )
  add(
      '--loss',
      choices=solver.LOSSES,
      default='linear',
      help="linear least squares (the paper's), log-space, or Huber (default %(default)s)",
  )
  add(
      '--heldout-threshold',
      type=float,
      default=None,
      metavar='X',
      help='fit only frontier points with x <= X and report predictions for those above',
  )
  _bootstrap_flags(add, 0, 'bootstrap replicates (default 0)')
  add(
      '--resample',
      choices=procedure.RESAMPLES,
      default='runs',
      help='bootstrap over runs before the frontier, or frontier points (default runs)',
  )
  add(
      '--json',
      type=pathlib.Path,
      default=None,
      metavar='PATH',
      help="write every result as JSON to PATH ('-': to stdout, instead of the report)",
  )
  _cache_flag(add)


def _bootstrap_flags(add, replicates: int, help_text: str) -> None:
  add('--bootstrap', type=int, default=replicates, metavar='N', help=help_text)
  add('--seed', type=int, default=0, help='bootstrap seed (default 0)')
  add('--level', type=float, default=0.95, help='interval coverage (default 0.95)')


def _cache_flag(add) -> None:
  add(
      '--no-compile-cache',
      action='store_true',
      help=f'do not keep compiled solver programs between runs (default: kept in'
      f' {cache.default_dir()}; {cache.ENV}=off or =DIR does the same or moves it)',
  )


def _paper_flags(parser: argparse.ArgumentParser) -> None:
  add = parser.add_argument
  add('--results', required=True, help="the paper's all_results.csv.gz (its wide CSV)")
  add(
      '--parquet',
      default=None,
      help="the paper's segmentation_results.parquet, for the ADE20K group (skipped without)",
  )
  add('--out', type=pathlib.Path, required=True, help='directory for the report, tables, figures')
  add(
      '--groups',
      nargs='*',
      default=None,
      metavar='NAME',
      help=f'only these groups (default: all): {", ".join(paper_groups.GROUP_NAMES)}',
  )
  _bootstrap_flags(
      add, 1000, 'bootstrap replicates per law, frontier points resampled (default 1000; 0: none)'
  )
  add(
      '--at',
      type=float,
      nargs='*',
      default=[1e11, 1e12],
      metavar='X',
      help='compute (GFLOPs) for P(A beats B) and the predictions (default 1e11 1e12)',
  )
  add(
      '--heldout-threshold',
      type=float,
      default=1e10,
      metavar='X',
      help='held-out check: fit frontier points up to X, predict those above (default 1e10)',
  )
  _cache_flag(add)
  parser.set_defaults(json=None)  # `_emit` writes --json where a command has it


# Columns whose values are different procedures: a command must select or compare them,
# never fit one law through several.
POOLED = ('arch', 'pretrain_dataset')


def _label(where: dict) -> str:
  return ', '.join(f'{k}={v}' for k, v in where.items()) or 'the table'


def _procedure(args, points, where: dict, seed: int) -> procedure.ProcedureFit:
  filters.require_single(procedure.select_where(points, where), POOLED, _label(where))
  return procedure.fit_procedure(
      points,
      where=where,
      frontier=args.frontier,
      form=args.form,
      loss=args.loss,
      heldout_threshold=args.heldout_threshold,
      bootstrap=args.bootstrap,
      resample=args.resample,
      seed=seed,
  )


def _points(args, task=None, metric=None):
  results = READERS[args.format](args.results)
  return filters.eligible_points(
      results,
      task or args.task,
      metric or args.metric,
      x=args.x,
      max_x=args.max_x,
      max_samples=args.max_samples,
      min_x=args.min_x,
  )


def _json_to_stdout(args) -> bool:
  return str(getattr(args, 'json', None)) == '-'


def _say(args, report_text: str) -> None:
  """Print the readable report, unless the JSON goes to stdout in its place."""
  if not _json_to_stdout(args):
    print(report_text, end='')


def _emit(args, payload: dict) -> None:
  if _json_to_stdout(args):
    print(json.dumps(payload, indent=2, default=float))
  elif getattr(args, 'json', None) is not None:
    args.json.write_text(json.dumps(payload, indent=2, default=float))


def cmd_fit(args) -> dict:
  proc = _procedure(args, _points(args), dict(args.where), args.seed)
  out = proc.summary(args.level)
  if args.predict_at:
    out['predictions'] = [dict(x=x, error=float(proc.fit.predict([x])[0])) for x in args.predict_at]
    if proc.boot is not None:
      lo, hi = proc.boot.prediction_interval(args.predict_at, args.level)
      for row, l, h in zip(out['predictions'], lo, hi):
        row['interval'] = [float(l), float(h)]
  if args.annealing_check:
    out['annealing'] = annealing.predict_cosine(proc.points, args.cooldown_shape)
  _say(args, text.fit_text(out, args.x))
  return out


def cmd_compare(args) -> dict:
  tasks = args.tasks or ([args.task] if args.task else [])
  if not tasks:
    raise ValueError('compare needs --task or --tasks')
  rows, pairs = [], []
  for spec in tasks:
    task, _, metric = spec.partition(':')
    points = _points(args, task, metric)
    groups = sorted(set(points[args.across])) if args.across else [None]
    for group in groups:
      where = dict(args.where) | ({args.across: str(group)} if args.across else {})
      a = _procedure(args, points, where | {args.by: args.a}, args.seed)
      b = _procedure(args, points, where | {args.by: args.b}, args.seed + 1)
      pair = dict(task=task, group=group, a=a.summary(args.level), b=b.summary(args.level))
      row = {'task': task} | ({args.across: group} if args.across else {})
      if a.boot is not None and b.boot is not None:
        interval = compare.crossover_interval(a.boot, b.boot, args.level)
        pair['crossover'] = vars(interval) | {'note': interval.note}
        pair['p_a_beats_b'] = {
            str(x): compare.probability_a_beats_b(a.boot, b.boot, x) for x in args.at
        }
        # The replicates' interval holds only for those that cross, and can exclude the point
        # fits' crossover: the share and the note travel with it into every table.
        row |= dict(
            crossover=interval.point or np.nan,
            share_crossing=interval.share_crossing,
            cross_low=interval.low,
            cross_high=interval.high,
        )
        row |= {f'P({args.a}<{args.b})@{x:g}': pair['p_a_beats_b'][str(x)] for x in args.at}
      else:
        pair['crossover'] = compare.crossover(a.fit, b.fit)
        row['crossover'] = pair['crossover'] or np.nan
      for name, proc in ((args.a, a), (args.b, b)):
        row[f'{name} c'] = proc.fit.params['c'] if 'c' in proc.fit.params else np.nan
        row |= {f'{name} E@{x:g}': float(proc.fit.predict([x])[0]) for x in args.at}
      if args.schedule_check:
        check = schedules.agreement(
            procedure.select_where(points, where),
            args.by,
            args.a,
            args.b,
            args.at,
            form=args.form,
            loss=args.loss,
            frontier=args.frontier,
        )
        pair['schedule_check'] = dataclasses.asdict(check)
        row |= dict(ranking_agrees=check.ranking_agrees, crossover_agrees=check.crossover_agrees)
      if a.boot is not None and b.boot is not None:
        row['note'] = interval.note or ''
      rows.append(row)
      pairs.append(pair)
  _say(args, report.to_markdown(rows) + text.compare_notes(pairs))
  if args.table is not None:
    args.table.write_text(report.TABLE_FORMATS[args.table.suffix.lstrip('.')](rows))
  return dict(by=args.by, a=args.a, b=args.b, comparisons=pairs, table=rows)


def cmd_plot(args) -> dict:
  # Imported here: matplotlib takes a while to import, and only figures need it.
  from fitting import plot  # pylint: disable=g-import-not-at-top

  plot.check_path(args.out)
  points = _points(args)
  values = args.values or sorted(set(points[args.by].astype(str)))
  procs = [
      _procedure(args, points, dict(args.where) | {args.by: v}, args.seed + i)
      for i, v in enumerate(values)
  ]
  crossovers = []
  if len(procs) == 2:
    c = compare.crossover(procs[0].fit, procs[1].fit)
    crossovers = [c] if c is not None else []
  loss = args.metric in filters.LOSS_METRICS
  plot.figure(
      [p.curve() for p in procs],
      args.out,
      title=f'{args.task} {args.metric}',
      xlabel=text.axis_label(args.x),
      ylabel=text.metric_label(args.metric),
      y_range=(0.0, np.inf) if loss else (0.0, 1.0),  # error = 1 - metric lies in [0, 1]
      level=args.level,
      crossovers=crossovers,
  )
  summaries = [p.summary(args.level) for p in procs]
  warnings = [f"{s['label']}: {w}" for s in summaries for w in s['warnings']]
  _say(args, f'wrote {args.out}\n' + ''.join(f'warning: {w}\n' for w in warnings))
  return dict(figure=str(args.out), procedures=summaries)


def cmd_optimal(args) -> dict:
  # Only the frontier: the law itself is not needed, so neither is compiling a solver.
  where = dict(args.where)
  points = procedure.select_where(_points(args), where)
  filters.require_single(points, POOLED, _label(where))
  front = filters.frontier_points(points, args.frontier)
  span = dict(x_min=float(front['x'].min()), x_max=float(front['x'].max()))
  label = ', '.join(f'{v}' for v in where.values()) or 'all'
  allocation = [optimal.allocation(front, q) | span for q in args.quantity]
  small = checks.frontier_size(len(front), 2, 'a log-log line (slope and coefficient)')
  out = dict(label=label, allocation=allocation, warnings=[small] if small else [])
  _say(args, text.optimal_text(out, args.x))
  return out


def parser() -> argparse.ArgumentParser:
  top = argparse.ArgumentParser(prog='python -m fitting', description=__doc__.split('\n')[0])
  sub = top.add_subparsers(dest='command', required=True)
  fit = sub.add_parser('fit', help='fit one procedure', description='Fit one procedure.')
  _data_flags(fit)
  fit.add_argument(
      '--predict-at',
      type=float,
      nargs='*',
      default=[],
      metavar='X',
      help='also predict the error at these x (with intervals if bootstrapped)',
  )
  fit.add_argument(
      '--annealing-check',
      action='store_true',
      help='also fit the LR-annealing law on the constant-LR and cooldown points and report'
      ' its predictions for the cosine points',
  )
  fit.add_argument(
      '--cooldown-shape',
      choices=annealing.COOLDOWN_SHAPES,
      default='linear',
      help='LR decay of cooldown branches, which the table does not record (default linear)',
  )
  cmp = sub.add_parser(
      'compare',
      help='compare two procedures',
      description='Crossovers and P(A beats B) of two procedures.',
  )
  _data_flags(cmp, task_required=False)
  cmp.add_argument('--by', required=True, help='column that tells the procedures apart')
  cmp.add_argument('--a', required=True, help='value of --by for procedure A')
  cmp.add_argument('--b', required=True, help='value of --by for procedure B')
  cmp.add_argument(
      '--at',
      type=float,
      nargs='*',
      default=[1e11],
      help='x values to compare the predictions at (default 1e11)',
  )
  cmp.add_argument(
      '--tasks',
      nargs='*',
      default=None,
      help='compare on each of these tasks (overrides --task), one table row each; TASK:METRIC'
      ' gives a task its own metric, e.g. mscoco_captions:image_retrieval_recall@5',
  )
  cmp.add_argument(
      '--across',
      default=None,
      metavar='COLUMN',
      help='repeat for each value of COLUMN (e.g. pretrain_dataset)',
  )
  cmp.add_argument(
      '--schedule-check',
      action='store_true',
      help='also fit A and B on constant-LR and on cosine points separately and report'
      ' whether the winners at --at and the crossover agree',
  )
  cmp.add_argument(
      '--table',
      type=pathlib.Path,
      default=None,
      metavar='PATH',
      help='write the side-by-side table; format from the suffix: .csv .md .tex',
  )
  plt = sub.add_parser('plot', help='plot procedures', description='Plot procedures.')
  _data_flags(plt)
  plt.add_argument('--by', required=True, help='column whose values are the procedures')
  plt.add_argument('--values', nargs='*', default=None, help='only these values of --by')
  plt.add_argument(
      '--out', type=pathlib.Path, required=True, help='figure path: .pdf, .svg, or .png (200 dpi)'
  )
  opt = sub.add_parser(
      'optimal',
      help='compute-optimal allocation',
      description='Samples seen (and size) on the frontier as a power law of x.',
  )
  _data_flags(opt)
  opt.add_argument(
      '--quantity',
      nargs='*',
      default=['samples_seen'],
      help='frontier columns to fit against x (default samples_seen; params too)',
  )
  _paper_flags(
      sub.add_parser(
          'paper',
          help="the paper's whole analysis",
          description="Every scaling law the paper fits, from its released files, into a report.",
      )
  )
  return top


COMMANDS = dict(
    fit=cmd_fit, compare=cmd_compare, plot=cmd_plot, optimal=cmd_optimal, paper=paper.command
)


def main(argv=None) -> int:
  args = parser().parse_args(argv)
  cache.enable(not getattr(args, 'no_compile_cache', False))
  try:
    payload = COMMANDS[args.command](args)
  except (ValueError, FileNotFoundError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  _emit(args, payload)
  return 0
