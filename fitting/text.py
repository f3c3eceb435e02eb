"""Readable terminal reports of what `fit`, `optimal` and `compare` return (their JSON is for
programs): the law in symbols, every number with its interval, and the warnings in words."""

from __future__ import annotations

import math

from fitting import filters

LAWS = {
    'saturation_both': 'E = a·(C + b)^c + d',
    'saturation': 'E = a·(C + b)^c',
    'power_law': 'E = a·C^c',
}
LOSSES = {
    'linear': 'least squares',
    'log': 'least squares on log error',
    'huber': 'Huber loss',
}
# (what C is, its unit) per x axis.
AXES = {'compute_gflops': ('compute', 'GFLOPs'), 'samples_seen': ('samples seen', 'samples')}


def law_text(form: str, variable: str = 'C') -> str:
  """A form's law in symbols, 'E = a·(C + b)^c + d', in `variable` (D: samples seen)."""
  return LAWS.get(form, form).replace('C', variable)


def axis_label(x: str) -> str:
  """'compute (GFLOPs)': an x axis with its unit."""
  what, unit = AXES.get(x, (x, ''))
  return f'{what} ({unit})' if unit and unit != 'samples' else what


def metric_label(metric: str) -> str:
  """What the fitted y is: the error 1 - metric, or a loss itself."""
  return metric if metric in filters.LOSS_METRICS else f'error = 1 - {metric}'


def _num(value) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return 'n/a'
  return f'{value:.4g}'


def _table(rows: list[list[str]], indent: str = '  ') -> list[str]:
  """Columns right-aligned to their widest cell, the first one left-aligned."""
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  lines = []
  for row in rows:
    cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
    lines.append(indent + '  '.join(cells).rstrip())
  return lines


def _warnings(warnings: list[str]) -> list[str]:
  return ['warnings:'] + [f'  ! {w}' for w in warnings] if warnings else []


def fit_text(summary: dict, x: str = 'compute_gflops') -> str:
  """The report of `fit`: law, parameters with intervals, points, MSE, held out, predictions."""
  _, unit = AXES.get(x, (x, ''))
  law = law_text(summary['form'])
  lines = [f"{summary['label']}: {law} ({summary['form']}, {LOSSES[summary['loss']]})"]
  held = summary.get('held_out')
  limit = math.inf if held is None else held['threshold']
  fitted = [p['x'] for p in summary.get('frontier', []) if p['x'] <= limit]
  span = f', C = {min(fitted):.3g}..{max(fitted):.3g} {unit}' if fitted else ''
  lines.append(
      f"  fitted on {summary['n_points']} frontier points{span}; MSE {summary['mse']:.4g}; "
      f"{summary['share_of_starts_at_best']:.0%} of starts reach the best"
  )
  boot = summary.get('bootstrap')
  intervals = boot['param_intervals'] if boot else {}
  header = ['parameter', 'value'] + ([f"{100 * boot['level']:.0f}% interval"] if boot else [])
  rows = [header]
  for name, value in summary['params'].items():
    row = [name.replace('_', ' '), _num(value)]
    if boot:
      lo, hi = intervals.get(name, (math.nan, math.nan))
      row.append(f'{_num(lo)} .. {_num(hi)}')
    rows.append(row)
  lines += _table(rows)
  if boot:
    lines.append(
        f"  bootstrap: {boot['replicates']} replicates over {boot['resampled']} (seed "
        f"{boot['seed']}); seed noise {boot['seed_noise']}"
    )
  else:
    lines.append('  no intervals: --bootstrap N draws them')
  if held:
    lines.append(
        f"held out: law fitted up to C = {held['threshold']:.3g}, predicting the "
        f"{len(held['points'])} frontier points above"
    )
    rows = [['C', 'actual', 'predicted', 'prediction error']]
    rows += [
        [f"{p['x']:.3g}", _num(p['actual']), _num(p['predicted']), f"{p['relative_error']:+.1%}"]
        for p in held['points']
    ]
    lines += _table(rows)
  if summary.get('predictions'):
    level = f"{100 * boot['level']:.0f}% interval" if boot else ''
    lines.append('predictions:')
    rows = [['C', 'error'] + ([level] if boot else [])]
    for p in summary['predictions']:
      row = [f"{p['x']:.3g}", _num(p['error'])]
      if 'interval' in p:
        row.append(f"{_num(p['interval'][0])} .. {_num(p['interval'][1])}")
      rows.append(row)
    lines += _table(rows)
  if summary.get('annealing'):
    lines += _annealing(summary['annealing'])
  lines += _warnings(summary.get('warnings', []))
  return '\n'.join(lines) + '\n'


def _annealing(check: dict) -> list[str]:
  law = check['law']
  values = ', '.join(f'{k}={_num(law[k])}' for k in ('l0', 'a', 'alpha', 'c'))
  lines = [
      f"LR-annealing law: E = l0 + a·S1^-alpha - c·S2, {values}; MSE {law['mse']:.4g}",
      '  on the constant-LR and cooldown points; predicting the cosine runs:',
  ]
  rows = [['run', 'actual', 'predicted', 'prediction error']]
  rows += [
      [r['run_id'], _num(r['actual']), _num(r['predicted']), f"{r['relative_error']:+.1%}"]
      for r in check['held_out']
  ]
  return lines + _table(rows)


def _allocation(row: dict, x: str) -> list[str]:
  q, slope, k = row['quantity'], row['slope'], row['coefficient']
  what, unit = AXES.get(x, (x, ''))
  lines = [
      f'  {q} ≈ {k:.3g} · C^{slope:.3f}',
      f'    slope {slope:.3f}: along the frontier, 10× more {what} goes with '
      f'{10**slope:.3g}× more {q}',
  ]
  if q == 'samples_seen' and x == 'compute_gflops':
    # compute = GFLOPs per sample × samples, so what samples do not take, model size does.
    lines.append(
        f'      and {10 ** (1 - slope):.3g}× more GFLOPs per sample (model size, C^{1 - slope:.3f})'
    )
  lines.append(
      f'    coefficient {k:.3g}: {q} on this line at C = 1 {unit}, far from any run; read it '
      f"with the slope: at the largest frontier C = {row['x_max']:.3g} the line gives "
      f"{k * row['x_max'] ** slope:.3g}"
  )
  return lines


def optimal_text(out: dict, x: str = 'compute_gflops') -> str:
  """The report of `optimal`: each power law, its slope and coefficient in words."""
  what, unit = AXES.get(x, (x, ''))
  first = out['allocation'][0]
  lines = [
      f"{out['label']}: compute-optimal allocation, a log-log line through the {first['n']} "
      f"frontier points (C = {what}, {first['x_min']:.3g}..{first['x_max']:.3g} {unit})"
  ]
  for row in out['allocation']:
    lines += _allocation(row, x)
  lines += _warnings(out.get('warnings', []))
  return '\n'.join(lines) + '\n'


def compare_notes(pairs: list[dict]) -> str:
  """Below `compare`'s table: each crossover's note and each fit's warnings, by row."""
  lines = []
  for pair in pairs:
    where = pair['task'] + (f" ({pair['group']})" if pair.get('group') is not None else '')
    crossover = pair.get('crossover')
    note = crossover.get('note') if isinstance(crossover, dict) else None
    if note:
      lines.append(f'note: {where}: crossover: {note}')
    for side in ('a', 'b'):
      for warning in pair[side].get('warnings', []):
        lines.append(f"warning: {where}: {pair[side]['label']}: {warning}")
    for noise in dict.fromkeys(pair[side].get('seed_noise') for side in ('a', 'b')):
      if noise:
        lines.append(f'note: {where}: bootstrap intervals: seed noise {noise}')
  return '\n'.join(lines) + ('\n' if lines else '')
