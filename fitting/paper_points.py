"""Each paper group's points and frontiers, from its released files, as `scaling_laws/main.py`'s
filter_data selects them; nothing here fits.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from fitting import filters, forms, paper_groups, table


def load_tables(results, parquet) -> dict[str, pd.DataFrame | str]:
  """Each source's long table, or, where it cannot be read, why (a one-line reason)."""
  tables: dict[str, pd.DataFrame | str] = {}
  for source, path, read in (
      ('csv', results, table.import_paper_csv),
      ('parquet', parquet, table.import_paper_parquet),
  ):
    if path is None:
      tables[source] = f'no {"--results" if source == "csv" else "--parquet"} file given'
      continue
    try:
      tables[source] = read(path)
    except (ValueError, OSError) as error:
      reason = str(error) if str(path) in str(error) else f'{path}: {error}'
      tables[source] = reason.replace('\n', ' ')
  return tables


def eligible(long: pd.DataFrame, group: paper_groups.Group) -> pd.DataFrame:
  """The points of the group's task and schedule that pass the script's filters.

  The paper applies --max_x and --max_samples_seen to a run's totals (all_results' gflops_total
  and total_samples_seen, before it recomputes a constant-LR checkpoint's own compute), so a
  long constant-LR run is left out whole rather than cut at max_x; the other filters
  (min_flops, warmup, last checkpoint of a cosine run, failed runs) are per checkpoint. A group
  with an eval_type (--eval_type) keeps only the rows evaluated so; the others take them all.
  Where the group's x is samples seen (fig3), --max_x caps a run's total samples, its x is each
  point's samples seen, and, as main.py does there, no H- model is a point; min_flops stays on
  compute.
  """
  if group.eval_type is not None:
    if 'eval_type' not in long.columns:
      raise ValueError(f'the table has no eval_type column for --eval_type {group.eval_type}')
    rows = long[long['task'] == group.task.name]
    if len(rows) and not (rows['eval_type'] == group.eval_type).any():
      raise ValueError(
          f'no {group.task.name} rows with eval_type {group.eval_type!r}; the table has '
          f'{sorted(set(rows["eval_type"].map(str)))}'
      )
    long = long[long['eval_type'] == group.eval_type]
  samples = long['samples_seen'].to_numpy(np.float64)
  total = long['total_samples'].to_numpy(np.float64)
  with np.errstate(divide='ignore', invalid='ignore'):
    run_compute = long['compute_gflops'].to_numpy(np.float64) * total / samples
  by_samples = group.x == 'samples'
  keep = ((total if by_samples else run_compute) <= group.max_x) & (total <= group.max_samples)
  if by_samples:
    keep &= ~long['model'].astype(str).str.contains('H-', regex=False).to_numpy()
  task = (long['task'] == group.task.name).to_numpy()
  if task.any() and not (keep & task).any():
    unit = 'samples' if by_samples else 'GFLOPs'
    raise ValueError(
        f"no {group.task.name} run within the script's --max_x {group.max_x:g} {unit} and "
        f'--max_samples_seen {group.max_samples:g}'
    )
  points = filters.eligible_points(
      long[keep],
      group.task.name,
      group.task.metric,
      max_x=math.inf,
      max_samples=math.inf,
      min_x=paper_groups.MIN_FLOPS,
  )
  points = filters.select(points, lr_schedule=group.schedule)
  return points.assign(x=points['samples_seen'].astype(np.float64)) if by_samples else points


@dataclasses.dataclass
class Prepared:
  """A procedure's points and frontier, before any fitting."""

  spec: paper_groups.Procedure
  points: pd.DataFrame
  frontier: pd.DataFrame

  @property
  def fitted(self) -> pd.DataFrame:
    return self.frontier[self.frontier['x'] <= self.spec.fit_up_to]


def prepare(group: paper_groups.Group, tables: dict) -> tuple[list[Prepared], list[str]]:
  """Each procedure's points and frontier, and notes on optional ones that are absent.

  Raises ValueError, naming what is missing, when the group cannot be fitted.
  """
  long = tables[group.source]
  if isinstance(long, str):
    raise ValueError(long)
  points = eligible(long, group)
  n_params = forms.get(group.form).n_params
  prepared, notes = [], []
  for spec in group.procedures:
    try:
      chosen = filters.select(points, arch=spec.arch, pretrain_dataset=spec.dataset)
    except ValueError as error:
      if spec.optional:
        notes.append(f'{spec.label}: not fitted ({error})')
        continue
      raise ValueError(f'{spec.label}: {error}') from None
    entry = Prepared(spec, chosen, filters.frontier_points(chosen, group.frontier))
    if len(entry.fitted) < n_params:
      why = (
          f'{spec.label}: only {len(entry.fitted)} frontier points up to {spec.fit_up_to:g} '
          f'for the {n_params} parameters of {group.form}'
      )
      if not spec.optional:
        raise ValueError(why)
      notes.append(f'{why}: not fitted')
      continue
    prepared.append(entry)
  return prepared, notes
