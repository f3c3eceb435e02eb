"""What `python -m fitting paper` writes: report.md, report.tex, tables/, figures/, paper.json.

Each group gets the same tables in every format: its laws as the paper prints them (a, ln b,
c, d, MSE, point counts), their bootstrap intervals and held-out check, its comparisons
(crossover, interval, P(A beats B)) and, for the constant-LR groups, the agreement with the
cosine laws. Figures are drawn on one background thread while the next group is fitted: the
fits run in JAX, which leaves the interpreter to matplotlib meanwhile.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import pathlib

import numpy as np

from fitting import filters, paper, paper_groups, paper_laws, plot, report, text

TABLE_KINDS = ('laws', 'intervals', 'comparisons', 'agreement')
_CAPTIONS = dict(
    laws='Laws, as the paper prints them',
    intervals='Bootstrap intervals and held-out check (beyond the paper)',
    comparisons='Comparisons (beyond the paper: interval and P(A beats B))',
    agreement='Constant-LR laws against the cosine laws (beyond the paper)',
)


def _mse(predicted, actual) -> float:
  return float(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2))


def _nan(value) -> float:
  return math.nan if value is None else float(value)


# ---- Row tables --------------------------------------------------------------------------


def law_rows(result: paper.GroupResult) -> list[dict]:
  rows = []
  for law in result.laws:
    fit, proc = law.proc.fit, law.proc
    row = dict(procedure=law.spec.label, arch=law.spec.arch, dataset=law.spec.dataset)
    if law.allocation is not None:
      row |= dict(slope=law.allocation['slope'], coefficient=law.allocation['coefficient'])
      row |= {f'D_opt@{x:g}': float(fit.predict([x])[0]) for x in paper_groups.OPTIMAL_AT}
    else:
      params = fit.params
      row |= dict(a=params['a'], **{'ln b': float(fit.theta[1])}, c=params['c'])
      if 'd' in params:
        row['d'] = params['d']
    held = proc.held_out
    row |= {
        'MSE': fit.objective,  # in the space the law is fitted in: log for fig6's line
        'fitted points': fit.n_points,
        'frontier points': len(proc.frontier),
        'points': len(proc.points),
        'fit up to': law.spec.fit_up_to,
        'predicted above': 0 if held is None else len(held.x),
        # The paper's predictions table reports the root of this mean, labelled MSE.
        'MSE above': math.nan if held is None else _mse(held.predicted, held.actual),
    }
    rows.append(row)
  return rows


def interval_rows(result: paper.GroupResult, level: float) -> list[dict]:
  rows = []
  for law in result.laws:
    boot, fit = law.proc.boot, law.proc.fit
    row = dict(procedure=law.spec.label)
    if boot is not None:
      intervals = boot.param_intervals(level)
      if law.allocation is not None:  # the power law D_opt = a·C^c: coefficient and slope
        named = dict(slope=intervals['c'], coefficient=intervals['a'])
        where = paper_groups.OPTIMAL_AT
      else:  # as the paper prints them: ln b, not b
        named = {name: bounds for name, bounds in intervals.items() if name != 'b'}
        named['ln b'] = named.pop('ln_b')
        where = result.at
      for name, (low, high) in named.items():
        row[f'{name} low'], row[f'{name} high'] = low, high
      lows, highs = boot.prediction_interval(where, level)
      what = 'E' if law.allocation is None else 'D_opt'
      for i, x in enumerate(where):
        row[f'{what}@{x:g}'] = float(fit.predict([x])[0])
        row[f'{what}@{x:g} low'], row[f'{what}@{x:g} high'] = float(lows[i]), float(highs[i])
    check = law.check
    errors = np.abs(check.relative_error) if check is not None else np.full(1, np.nan)
    row |= {
        'check fit up to': math.nan if check is None else check.threshold,
        'check points above': 0 if check is None else len(check.x),
        'check mean abs rel error': float(np.mean(errors)),
        'check max abs rel error': float(np.max(errors)),
        'check note': law.check_note or '',
    }
    rows.append(row)
  return rows


def comparison_rows(result: paper.GroupResult) -> list[dict]:
  rows = []
  for c in result.comparisons:
    row = dict(A=c.a, B=c.b, crossover=_nan(c.crossover))
    if c.interval is not None:
      row |= {
          'crossover low': c.interval.low,
          'crossover high': c.interval.high,
          'share crossing': c.interval.share_crossing,
      }
      row |= {f'P(A beats B)@{x:g}': p for x, p in c.p_a_beats_b.items()}
      row['note'] = c.interval.note or ''
    rows.append(row)
  return rows


def agreement_rows(result: paper.GroupResult) -> list[dict]:
  rows = []
  for a, b, agree in result.agreement:
    row = dict(
        A=a,
        B=b,
        **{
            'constant-LR crossover': _nan(agree.constant.crossover),
            'cosine crossover': _nan(agree.cosine.crossover),
            'crossovers agree': agree.crossover_agrees,
        },
    )
    for x in agree.constant.winners:
      row[f'winner@{x:g} constant-LR'] = agree.constant.winners[x]
      row[f'winner@{x:g} cosine'] = agree.cosine.winners[x]
    row['rankings agree'] = agree.ranking_agrees
    rows.append(row)
  return rows


def tables(result: paper.GroupResult, level: float) -> dict[str, list[dict]]:
  """The group's non-empty tables, by kind."""
  out = dict(
      laws=law_rows(result),
      intervals=interval_rows(result, level),
      comparisons=comparison_rows(result),
      agreement=agreement_rows(result),
  )
  return {kind: rows for kind, rows in out.items() if rows}


# ---- Figures --------------------------------------------------------------------------------


def draw(result: paper.GroupResult, path, level: float) -> None:
  """The group's figure: each law with its frontier and band, crossovers marked."""
  group = result.group
  curves = [law.proc.curve() for law in result.laws]
  if result.cosine is not None:
    for law in result.cosine.laws:
      front = (law.proc.frontier['x'].to_numpy(), law.proc.frontier['error'].to_numpy())
      curves.append(plot.Curve(f'{law.spec.label} (cosine)', front, front, law.proc.fit))
  curves = [dataclasses.replace(c, variable=group.variable) for c in curves]
  optimal = group.kind == 'optimal'
  plot.figure(
      curves,
      path,
      title=group.title,
      xlabel=group.xlabel,
      ylabel=group.ylabel,
      y_range=(1.0, 1e16) if optimal else (0.0, 1.0),
      level=level,
      crossovers=[c.crossover for c in result.comparisons if c.crossover is not None],
  )


class Figures:
  """Draws each finished group's figure on one background thread (matplotlib's state is one
  thread's); leaving the `with` block waits for them and raises any drawing error."""

  def __init__(self, folder: pathlib.Path, level: float):
    self.folder, self.level = pathlib.Path(folder), level
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    self._futures: list[concurrent.futures.Future] = []

  def __enter__(self):
    self.folder.mkdir(parents=True, exist_ok=True)
    return self

  def submit(self, result: paper.GroupResult) -> None:
    if result.skipped or not result.laws:
      return
    path = self.folder / f'{result.group.name}.png'
    self._futures.append(self._pool.submit(draw, result, path, self.level))

  def __exit__(self, *exc):
    self._pool.shutdown(wait=True)
    if exc[0] is None:
      for future in self._futures:
        future.result()


# ---- The report -----------------------------------------------------------------------------


def _describe(group: paper_groups.Group) -> str:
  """The group's selection and law in one sentence, as its script sets them."""
  checkpoints = (
      'every checkpoint after warmup'
      if filters.is_constant_schedule(group.schedule)
      else 'each run at its last checkpoint'
  )
  samples = '' if math.isinf(group.max_samples) else f', samples seen ≤ {group.max_samples:g}'
  if group.kind == 'optimal':
    law = 'log-log line of samples seen against compute on the frontier'
  else:
    law = f'{group.form} {text.law_text(group.form, group.variable)}'
  limits = ', '.join(f'{p.label} {p.fit_up_to:g}' for p in group.procedures)
  if group.x == 'samples':
    selected = f'compute ≥ {paper_groups.MIN_FLOPS:g} GFLOPs, no H- model{samples}'
    axis = (
        f' The laws are functions of samples seen D, not compute (--x_col total_samples_seen): '
        f'P(A beats B) at D = {", ".join(f"{x:g}" for x in group.at)}, held-out check fitted '
        f'up to D = {group.heldout:g}.'
    )
  else:
    selected, axis = f'compute {paper_groups.MIN_FLOPS:g}..{group.max_x:g} GFLOPs{samples}', ''
  return (
      f'`{group.script}`: {group.task.name}/{group.task.metric}, {group.schedule} runs '
      f'({checkpoints}), {selected}; {group.frontier} frontier; {law}; fitted up to (the '
      f"script's LARGE_FLOPS_MAPPING): {limits}.{axis}"
  )


def _escape_md(cell: str) -> str:
  return cell.replace('|', '\\|')


def markdown(results: list[paper.GroupResult], settings: dict, by_group: dict) -> str:
  level = settings['level']
  fitted = [r for r in results if not r.skipped]
  lines = [
      "# The paper's scaling laws, refitted",
      '',
      f'From `{settings["results"]}`'
      + (f' and `{settings["parquet"]}`' if settings['parquet'] else '')
      + f': {len(fitted)} of {len(results)} groups fitted in {settings["seconds"]:.1f} s. '
      "Each group is one figure of the paper, fitted with its script's filters, frontier and "
      'law (LAION-AI/scaling-laws-for-comparison, `scaling_laws/main.py`); C is compute in '
      'GFLOPs, E the error, 1 − metric.',
      '',
      "Beyond the paper: each law's fitted frontier points resampled "
      f'{settings["bootstrap"]} times (as the paper\'s `fit_bootstrap` resamples them; it runs '
      f"one), with {100 * level:.0f}% percentile intervals; each pair's crossover interval and "
      f'P(A beats B) at {", ".join(f"{x:g}" for x in settings["at"])} GFLOPs from replicate '
      'pairs; a held-out check that fits frontier points up to '
      f'{settings["heldout_threshold"]:g} and predicts those above; and whether the '
      'constant-LR laws rank A and B as the cosine laws do.',
      '',
      '| group | paper script | result |',
      '|---|---|---|',
  ]
  lines += [
      f'| [{r.group.name}](#{r.group.name}) | `{r.group.script}` | {_escape_md(paper.headline(r))} |'
      for r in results
  ]
  for result in results:
    group = result.group
    lines += ['', f'## {group.name}', '', f'{group.title}.', '', _describe(group), '']
    if result.skipped:
      lines += [f'**Skipped:** {_escape_md(result.skipped)}']
      continue
    lines += [f'![{group.name}](figures/{group.name}.png)', '']
    for kind, rows in by_group[group.name].items():
      lines += [f'**{_CAPTIONS[kind]}**', '', report.to_markdown(rows)]
    notes = list(result.notes)
    for law in result.laws:
      notes += [f'{law.spec.label}: {w}' for w in law.proc.warnings()]
    lines += [f'- {n}' for n in notes]
  return '\n'.join(lines).rstrip() + '\n'


def _latex_text(cell: str) -> str:
  for a, b in (('\\', r'\textbackslash{}'), ('_', r'\_'), ('%', r'\%'), ('&', r'\&'), ('#', r'\#')):
    cell = cell.replace(a, b)
  return cell.replace('≤', r'$\le$').replace('·', r'$\cdot$').replace('−', '-')


def latex(results: list[paper.GroupResult], settings: dict, by_group: dict) -> str:
  lines = [
      r'\documentclass{article}',
      r'\usepackage[margin=2cm]{geometry}',
      r'\usepackage{booktabs,graphicx}',
      r'\begin{document}',
  ]
  for result in results:
    group = result.group
    lines += [rf'\section*{{{_latex_text(group.name)}: {_latex_text(group.title)}}}']
    lines += [_latex_text(_describe(group).replace('`', '')), '']
    if result.skipped:
      lines += [rf'\textbf{{Skipped:}} {_latex_text(result.skipped)}', '']
      continue
    for kind, rows in by_group[group.name].items():
      lines += [
          r'\begin{table}[h]',
          r'\centering',
          rf'\caption{{{_latex_text(group.name)}: {_latex_text(_CAPTIONS[kind])}}}',
          r'\resizebox{\linewidth}{!}{%',
          report.to_latex(rows).rstrip() + '}',
          r'\end{table}',
      ]
  lines += [r'\end{document}']
  return '\n'.join(lines) + '\n'


def _law_json(law: paper_laws.Law, level: float) -> dict:
  out = law.proc.summary(level)
  out |= dict(arch=law.spec.arch, dataset=law.spec.dataset, fit_up_to=law.spec.fit_up_to)
  out['check'] = (
      dict(note=law.check_note)
      if law.check is None
      else dict(threshold=law.check.threshold, points=law.check.rows())
  )
  if law.allocation is not None:
    out['allocation'] = law.allocation
  return out


def summary(results: list[paper.GroupResult], settings: dict, by_group: dict) -> dict:
  """Everything the report says, JSON-ready."""
  level = settings['level']
  groups = []
  for result in results:
    entry = dict(
        name=result.group.name,
        title=result.group.title,
        script=result.group.script,
        group=dataclasses.asdict(result.group),
        skipped=result.skipped,
        notes=result.notes,
        done_at_s=result.done_at,
    )
    if not result.skipped:
      entry['laws'] = [_law_json(law, level) for law in result.laws]
      entry['tables'] = by_group[result.group.name]
    groups.append(entry)
  return dict(settings=settings, groups=groups)


def write(results: list[paper.GroupResult], out: pathlib.Path, settings: dict) -> dict:
  """report.md, report.tex, tables/GROUP.KIND.{csv,tex} and paper.json in `out`."""
  out = pathlib.Path(out)
  folder = out / 'tables'
  folder.mkdir(parents=True, exist_ok=True)
  by_group = {r.group.name: tables(r, settings['level']) for r in results if not r.skipped}
  for name, group_tables in by_group.items():
    for kind, rows in group_tables.items():
      for suffix in ('csv', 'tex'):
        path = folder / f'{name}.{kind}.{suffix}'
        path.write_text(report.TABLE_FORMATS[suffix](rows))
  (out / 'report.md').write_text(markdown(results, settings, by_group))
  (out / 'report.tex').write_text(latex(results, settings, by_group))
  payload = summary(results, settings, by_group)
  (out / 'paper.json').write_text(json.dumps(payload, indent=1, default=_json_default))
  return payload


def _json_default(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, np.bool_):
    return bool(value)
  if isinstance(value, np.ndarray):
    return value.tolist()
  return str(value)
