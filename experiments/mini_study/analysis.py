"""From the study's results table to its verdict: frontiers, fitted laws, held-out errors,
pairwise comparisons with bootstrap intervals that include seed noise, and the
constant-vs-cosine check.

Everything is the `fitting` package's, applied as the paper does: constant-LR points after
warmup (every milestone counts), cosine runs at their end, a Pareto frontier per procedure, and
error = 1 - metric. A comparison is decided only where one procedure wins in at least
`DECIDED` of the bootstrap replicates with the seed's noise in them; otherwise it is
undecided at this budget, however the one seed trained happened to fall.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from experiments.mini_study import plan
from fitting import compare, filters, forms, heldout, plot, schedules
from fitting import procedure as procedure_lib

# (task, metric, what it is): the study's two downstream measures.
METRICS = (
    ('zeroshot_average', 'acc1', 'zero-shot top-1, mean of shape, colour and count'),
    ('synthetic/retrieval', 'image_retrieval_recall@5', 'text-to-image retrieval recall@5'),
)
FRONTIER = 'pareto_naive'  # the paper's binning needs x >= ~1e6 GFLOPs; ours is ~1e2-1e3
SCHEDULE_FORM = 'power_law'  # cosine runs give a few points each: a two-parameter law
DECIDED = 0.9  # P(A beats B), seed noise included, that a verdict needs


def with_procedure(points: pd.DataFrame, procedures) -> pd.DataFrame:
  """`points` with a `procedure` column: the study's name for its (arch, dataset)."""
  names = {(plan.PROCEDURES[p].arch, plan.PROCEDURES[p].dataset): p for p in procedures}
  keys = zip(points['arch'], points['pretrain_dataset'])
  return points.assign(procedure=[names.get(k, '') for k in keys])


def _held_out(points: pd.DataFrame, front: pd.DataFrame, largest: str, form: str):
  """The largest scale, held out: fit the frontier up to the compute the smaller models reach,
  predict the frontier beyond it -- the largest model's checkpoints that no cheaper point
  beats. A law fitted to a frontier claims nothing about dominated points (a large model early
  in training, which a smaller one beat at less compute), so they are not held-out targets."""
  smaller = points[points['model'] != largest]
  if smaller.empty:
    return None
  threshold = float(smaller['x'].max())
  beyond = front['x'] > threshold
  if not beyond.any() or (~beyond).sum() < forms.get(form).n_params:
    return None  # the largest model never reached the frontier, or too little to fit: n/a
  return heldout.held_out(front['x'], front['error'], threshold, form)


def seed_noise(points: pd.DataFrame) -> tuple[float, int]:
  """How far the seed alone moves a run's error, from the runs trained with several seeds:
  the standard deviation of log(error) across seeds at one checkpoint, pooled over the
  checkpoints of every replicated run (0 where none is). Also returns that checkpoint count."""
  const = points[filters.is_constant(points)]
  if 'seed' not in const or const['seed'].nunique() < 2:
    return 0.0, 0
  by_seed = const.pivot_table(
      index=['procedure', 'model', 'samples_seen'], columns='seed', values='error'
  )
  logs = np.log(by_seed[by_seed.notna().sum(axis=1) >= 2])
  if logs.empty:
    return 0.0, 0
  return float(np.sqrt(logs.var(axis=1, ddof=1).mean())), len(logs)


def fit_procedure(
    points, procedure, largest, form, n_boot, seed, run_noise=0.0
) -> procedure_lib.ProcedureFit:
  """The law of a procedure's constant-LR points, with its largest model held out; its
  bootstrap carries `run_noise` (`seed_noise`) to the runs trained with one seed."""
  const = points[filters.is_constant(points)]
  fitted = procedure_lib.fit_procedure(
      const,
      where=dict(procedure=procedure),
      frontier=FRONTIER,
      form=form,
      bootstrap=n_boot,
      seed=seed,
      run_noise=run_noise,
  )
  # No fixed threshold: the law is fitted on every frontier point, and the check is a fit of
  # its own below the compute that the smaller models reach.
  held_out = _held_out(fitted.points, fitted.frontier, largest, form)
  return dataclasses.replace(fitted, held_out=held_out)


def analyse(results: pd.DataFrame, procedures, largest: dict, form: str, n_boot: int, figures: str):
  """One entry per metric: fits, comparisons and the schedule check; writes a figure each."""
  os.makedirs(figures, exist_ok=True)
  out = []
  for task, metric, description in METRICS:
    points = filters.eligible_points(
        results, task, metric, max_x=np.inf, max_samples=np.inf, min_x=0.0
    )
    points = with_procedure(points, procedures)
    noise, checkpoints = seed_noise(points)
    fits, problems = {}, []
    for i, p in enumerate(procedures):
      try:
        fits[p] = fit_procedure(points, p, largest[p], form, n_boot, seed=i, run_noise=noise)
      except ValueError as error:  # e.g. too few frontier points: say so, fit the others
        problems.append(f'{task}: {error}')  # the fitting library's message names the procedure
    x_max = float(points['x'].max())
    pairs = []
    for a, b in plan.comparisons(fits):
      # fitting's default search starts at the paper's 1e6 GFLOPs; ours starts near 1.
      search = (float(points['x'].min()), 1e3 * x_max)
      interval = compare.crossover_interval(fits[a].boot, fits[b].boot, search=search)
      both = points[points['procedure'].isin([a, b])]
      try:
        if not (plan.PROCEDURES[a].cosine and plan.PROCEDURES[b].cosine):
          raise ValueError('no cosine runs')
        # Each cosine run is one point: all of them count, not only a frontier of a few.
        check = schedules.agreement(
            both,
            'procedure',
            a,
            b,
            [x_max],
            form=SCHEDULE_FORM,
            frontier=FRONTIER,
            cosine_frontier='all',
        )
        agreement = dataclasses.asdict(check)
      except ValueError as error:  # e.g. too few cosine points for a fit
        agreement = {'error': str(error)}
      pairs.append(
          dict(
              a=a,
              b=b,
              crossover=dataclasses.asdict(interval),
              p_a_beats_b_at_max=compare.probability_a_beats_b(fits[a].boot, fits[b].boot, x_max),
              p_a_beats_b_at_10x=compare.probability_a_beats_b(
                  fits[a].boot, fits[b].boot, 10 * x_max
              ),
              schedule_check=agreement,
              seed_noise='seed noise included' if noise else 'seed noise excluded',
          )
      )
    entry = dict(
        task=task,
        metric=metric,
        description=description,
        x_max=x_max,
        fits=fits,
        pairs=pairs,
        figure=None,
        problems=problems,
        seed_noise=dict(sigma=noise, checkpoints=checkpoints),
    )
    out.append(entry)
    if not fits:
      continue
    entry['figure'] = os.path.join(figures, f"{task.replace('/', '_')}.png")
    crossings = [p['crossover']['point'] for p in pairs if p['crossover']['point'] is not None]
    plot.figure(
        [f.curve() for f in fits.values()],
        entry['figure'],
        title=f'{task} ({description})',
        ylabel=f'error = 1 - {metric}',
        crossovers=crossings if len(fits) == 2 else (),
    )
  return out
