"""The study's Markdown report: the verdict first, then the laws, held-out errors, the
schedule check and where the time went."""

from __future__ import annotations

import os

import numpy as np

from experiments.mini_study import plan
from experiments.mini_study.analysis import DECIDED


def _law(fit) -> str:
  p = fit.params
  if fit.form.name == 'power_law':
    return f'E = {p["a"]:.3g} · C^{p["c"]:.3f}'
  offset = f' + {p["d"]:.3g}' if 'd' in p else ''
  return f'E = {p["a"]:.3g} · (C + {p["b"]:.3g})^{p["c"]:.3f}{offset}'


def _crossover(c: dict) -> str:
  if c['point'] is None:
    share = c['share_crossing']
    return f'none in range ({100 * share:.0f}% of bootstrap pairs cross)'
  return (
      f'{c["point"]:.3g} GFLOPs ({100 * c["level"]:.0f}% interval {c["low"]:.3g} – '
      f'{c["high"]:.3g}; {100 * c["share_crossing"]:.0f}% of bootstrap pairs cross)'
  )


def held_out_errors(analysis: list[dict]) -> list[float]:
  """|relative error| of every held-out prediction of every metric and procedure."""
  errors = []
  for entry in analysis:
    for f in entry['fits'].values():
      if f.held_out is not None:
        errors += list(np.abs(f.held_out.relative_error))
  return errors


def held_out_missing(analysis: list[dict]) -> list[str]:
  """'task/procedure' of every fit without a held-out check."""
  return [f'{e["task"]}/{p}' for e in analysis for p, f in e['fits'].items() if not f.held_out]


def _frontier_ends(analysis: list[dict]) -> list[str]:
  """Where each frontier without a held-out check ends: its best point."""
  out = []
  for entry in analysis:
    for p, f in entry['fits'].items():
      if not f.held_out:
        best = f.frontier.loc[f.frontier['error'].idxmin()]
        out.append(
            f'{entry["task"]}/{p}: the frontier ends at {best["model"]} after '
            f'{int(best["samples_seen"])} samples ({best["x"]:.3g} GFLOPs, error '
            f'{best["error"]:.3f})'
        )
  return out


def _leader(pair: dict) -> tuple[str, str, float]:
  """(the procedure ahead at the largest compute, the other, its share of replicates)."""
  a, b, p = pair['a'], pair['b'], pair['p_a_beats_b_at_max']
  return (a, b, p) if p >= 0.5 else (b, a, 1 - p)


def verdict(entry: dict) -> list[str]:
  """A line per comparison: its winner where the bootstrap with seed noise decides it, else
  'undecided at this budget' -- a winner one seed happened to give is not a finding."""
  lines = []
  for pair in entry['pairs']:
    a, b = pair['a'], pair['b']
    winner, loser, share = _leader(pair)
    noise = pair.get('seed_noise', 'seed noise excluded')
    at_max = f'at the largest compute trained ({entry["x_max"]:.3g} GFLOPs)'
    if share >= DECIDED:
      head = f'- **{winner}** beats {loser} {at_max} in {100 * share:.0f}% of bootstrap replicates'
    else:
      head = (
          f'- {a} vs {b}: **undecided at this budget**: {winner} is ahead {at_max} in '
          f'{100 * share:.0f}% of bootstrap replicates, below the {100 * DECIDED:.0f}% '
          'a verdict needs'
      )
    lines.append(
        f'{head} ({noise}); {a} beats {b} at 10× that in '
        f'{100 * pair["p_a_beats_b_at_10x"]:.0f}%. Crossover: {_crossover(pair["crossover"])}.'
    )
  return lines


def decisions(entry: dict) -> dict[str, str | None]:
  """'a vs b' -> the winner, or None where undecided: what replicate studies must agree on."""
  out = {}
  for pair in entry['pairs']:
    winner, _, share = _leader(pair)
    out[f'{pair["a"]} vs {pair["b"]}'] = winner if share >= DECIDED else None
  return out


def write(
    path: str,
    procedures,
    analysis: list[dict],
    runs,
    outcomes,
    timings: dict,
    budget,
    learning_curves: str,
) -> None:
  titles = {p: plan.PROCEDURES[p].title for p in procedures}
  compared = '; '.join(f'{titles[a]} vs {titles[b]}' for a, b in plan.comparisons(procedures))
  out = [f'# Mini study on the synthetic world: {compared}', '']
  out += [
      f'{len(runs)} runs on the synthetic world at batch {budget.global_batch} (listed at the '
      'end): constant-LR ladders evaluated at every milestone, cosine runs at their end; the '
      f'synthetic zero-shot tasks and retrieval with {budget.eval_size} images each; laws fitted '
      "on each procedure's Pareto frontier of constant-LR points, "
      f'{budget.bootstrap} bootstrap replicates over runs.',
      '',
  ]
  errors = held_out_errors(analysis)
  out += ['## Verdict', '']
  for entry in analysis:
    out += [f'**{entry["task"]}** ({entry["description"]}):', '', *verdict(entry), '']
  missing = held_out_missing(analysis)
  if errors:
    out += [
        "Held-out check: laws fitted to each frontier below the largest model's compute predict "
        f"the frontier beyond it (that model's checkpoints no cheaper point beats) with mean "
        f'|relative error| {100 * np.mean(errors):.1f}% (max {100 * np.max(errors):.1f}%, '
        f'{len(errors)} points).',
        '',
    ]
  if missing:
    out += [
        'No held-out check where the largest model never reached the frontier (a smaller '
        'model beat every checkpoint of it at less compute: at this budget the compute-optimal '
        'size is smaller) or too few frontier points lay below it to fit:',
        '',
        *(f'- {line}' for line in _frontier_ends(analysis)),
        '',
    ]
  out += ['## Seed noise', '']
  out += [
      'A second seed of the cheapest runs measures how far the seed alone moves a run: the '
      'standard deviation of log(error) between seeds at one checkpoint. Every bootstrap '
      'replicate draws the replicated runs among their seeds and moves each run trained once by '
      'that much (one draw per run), so the shares above include seed noise. Measured on the '
      'smallest models, where colour is not learned yet; larger runs can move more with the '
      'seed (experiments/mini_study/NOTES.md).',
      '',
  ]
  for entry in analysis:
    noise = entry['seed_noise']
    measured = (
        f'{100 * noise["sigma"]:.1f}% per run ({noise["checkpoints"]} checkpoints with two seeds)'
        if noise['checkpoints']
        else 'not measured (no run has a second seed): intervals exclude seed noise'
    )
    out.append(f'- {entry["task"]}: {measured}')
  out += ['']
  out += ['## Fitted laws (error E vs compute C in GFLOPs)', '']
  out += [
      '| task | procedure | law | frontier points | held-out rel. error |',
      '|---|---|---|---|---|',
  ]
  for entry in analysis:
    for name, f in entry['fits'].items():
      if f.held_out is None:
        held = 'n/a'
      else:
        held = ', '.join(f'{100 * e:+.1f}%' for e in f.held_out.relative_error)
      out.append(f'| {entry["task"]} | {name} | {_law(f.fit)} | {f.fit.n_points} | {held} |')
  out += ['', '## Constant LR vs cosine', '']
  out += [
      'Each pair compared on constant-LR points and on cosine points separately '
      '(power law per procedure); the cheap method is trustworthy where both agree.',
      '',
      '| task | pair | winner (constant) | winner (cosine) | ranking agrees |',
      '|---|---|---|---|---|',
  ]
  for entry in analysis:
    for pair in entry['pairs']:
      check = pair['schedule_check']
      if 'error' in check:
        out.append(f'| {entry["task"]} | {pair["a"]} vs {pair["b"]} | – | – | {check["error"]} |')
        continue
      const = ', '.join(check['constant']['winners'].values())
      cosine = ', '.join(check['cosine']['winners'].values())
      out.append(
          f'| {entry["task"]} | {pair["a"]} vs {pair["b"]} | {const} | {cosine} | '
          f'{"yes" if check["ranking_agrees"] else "no"} |'
      )
  out += ['', '## Figures', '']
  out += [
      f'![{e["task"]}]({os.path.relpath(e["figure"], os.path.dirname(path))})'
      for e in analysis
      if e['figure']
  ]
  out += [
      '',
      'Learning curves of the constant-LR ladders on each synthetic task (chance dashed):',
      '',
      f'![learning curves]({os.path.relpath(learning_curves, os.path.dirname(path))})',
  ]
  out += ['', '## Time', '']
  out += [f'- {stage}: {seconds:.0f} s' for stage, seconds in timings.items()]
  out += [
      '',
      '## Runs',
      '',
      '| run | samples | GFLOPs | train s | eval s |',
      '|---|---|---|---|---|',
  ]
  out += [
      f'| {r.name} | {r.plan.total_samples} | {r.compute_gflops:.3g} | {o.train_s:.0f} | '
      f'{o.eval_s:.0f} |'
      for r, o in zip(runs, outcomes)
  ]
  problems = [f'{o.name}: {o.error}' for o in outcomes if o.error]
  problems += [p for entry in analysis for p in entry['problems']]
  if problems:
    out += ['', '## Problems', ''] + [f'- {p}' for p in problems]
  with open(path, 'w') as file:
    file.write('\n'.join(out) + '\n')
