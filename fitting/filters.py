"""The paper's point filters: which (compute, error) points of a results table enter a fit.

Cosine (and any other decaying) schedules contribute only their final checkpoint, since an
intermediate checkpoint of a cosine run has not annealed; constant-LR runs contribute every
checkpoint after warmup, which is what makes them cheap. A cooldown branch (schedule
'cooldown', or a row with `cooldown_from` set) is annealed only at its end, so it counts as
decaying whatever its schedule name, as does the paper's 'const-cooldown' run. ImageNet and
COCO drop the high-compute points whose error is still >= 0.7 (failed runs that would pin the
curve).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fitting import frontier as frontier_lib
from fitting import table as table_lib

FRONTIERS = {
    'pareto_bin': frontier_lib.pareto_bin,
    'pareto_naive': frontier_lib.pareto_naive,
    'all': frontier_lib.every_point,
}

MAX_X = 1e12
MAX_SAMPLES = 1e10
MIN_X = 1e6
# Metrics that are losses: fitted as they are rather than as 1 - metric.
LOSS_METRICS = frozenset({'contrastive_loss', 'caption_loss', 'loss'})
FAILED_RUN_TASKS = frozenset({'imagenet1k', 'mscoco_captions'})
FAILED_RUN_MIN_X, FAILED_RUN_MIN_ERROR = 1e11, 0.7


def cooldown_samples(points: pd.DataFrame) -> np.ndarray:
  """Samples seen where each row's cooldown branch left its constant run; NaN if none.

  `cooldown_from` is a number of samples, or 'parent_run@samples' as scaling_vlm writes it;
  an empty string or NaN means the row is not on a cooldown branch.
  """
  if 'cooldown_from' not in points.columns:
    return np.full(len(points), np.nan)
  # A column of only empty cells reads as floats (all NaN), so no `.str` accessor here.
  text = points['cooldown_from'].map(lambda v: '' if pd.isna(v) else str(v).rsplit('@', 1)[-1])
  return pd.to_numeric(text, errors='coerce').to_numpy(dtype=float)


def is_constant_schedule(name) -> bool:
  """Whether an lr_schedule names a constant LR: 'const', 'constant', but not 'const-cooldown'.

  The paper's 'const-cooldown' runs cool a constant LR down at their end, and its code keeps
  only their last checkpoint, as for cosine (`scaling_laws/main.py`, filter_data).
  """
  name = str(name).lower()
  return name.startswith('const') and 'cooldown' not in name


def is_constant(points: pd.DataFrame) -> np.ndarray:
  """Rows of constant-LR runs (every checkpoint after warmup counts), not of cooldowns."""
  constant = points['lr_schedule'].map(is_constant_schedule).to_numpy(bool)
  return constant & np.isnan(cooldown_samples(points))


def eligible_points(
    results: pd.DataFrame,
    task: str,
    metric: str,
    *,
    x: str = 'compute_gflops',
    max_x: float = MAX_X,
    max_samples: float = MAX_SAMPLES,
    min_x: float = MIN_X,
) -> pd.DataFrame:
  """Rows of one task and metric that pass the paper's filters, with `x` and `error` added."""
  table_lib.require_columns(results, table_lib.COLUMNS, 'results table')
  if task not in set(results['task']):
    raise ValueError(f'unknown task {task!r}; the table has {sorted(set(results["task"]))}')
  rows = results[results['task'] == task]
  if metric not in set(rows['metric']):
    raise ValueError(
        f'task {task!r} has no metric {metric!r}; it has {sorted(set(rows["metric"]))}'
    )
  rows = rows[rows['metric'] == metric].copy()
  for column in (x, 'value', 'samples_seen'):
    numbers = pd.to_numeric(rows[column], errors='coerce')
    for bad, what in (
        (numbers.isna() & rows[column].notna(), 'non-numeric'),  # text in a CSV cell
        (rows[column].isna(), 'NaN'),
        (np.isinf(numbers), 'infinite'),
    ):
      if bad.any():
        runs = sorted(set(rows.loc[bad, 'run_id']))[:5]
        example = rows.loc[bad, column].iloc[0]
        raise ValueError(
            f'{bad.sum()} rows of {task}/{metric} have {what} {column} (runs {runs}; '
            f'first: {str(example)!r} in row {rows.index[bad][0]})'
        )
    rows[column] = numbers.astype(np.float64)
  if (rows[x] <= 0).any():
    runs = sorted(set(rows.loc[rows[x] <= 0, 'run_id']))[:5]
    raise ValueError(f'{x} must be positive; runs {runs} have {x} <= 0')
  rows['x'] = rows[x].astype(np.float64)
  rows['error'] = rows['value'] if metric in LOSS_METRICS else 1.0 - rows['value']

  v = lambda column: rows[column].to_numpy(np.float64)
  after_warmup = v('warmup') * v('global_batch_size') <= v('samples_seen')
  final = np.isclose(v('samples_seen'), v('total_samples'), rtol=1e-6)
  keep = np.where(is_constant(rows), after_warmup, final)
  keep &= (v('x') <= max_x) & (v('samples_seen') <= max_samples) & (v('x') >= min_x)
  if task in FAILED_RUN_TASKS:
    keep &= ~((v('x') > FAILED_RUN_MIN_X) & (v('error') >= FAILED_RUN_MIN_ERROR))
  if not keep.any():
    raise ValueError(
        f'the filters keep none of the {len(rows)} rows of {task}/{metric}: {x} spans '
        f'{v("x").min():.3g}..{v("x").max():.3g} against min_x={min_x:g}, max_x={max_x:g} '
        f'(--min-x/--max-x), and samples_seen goes up to {v("samples_seen").max():.3g} '
        f'against max_samples={max_samples:g}; constant-LR rows count only after warmup and '
        'cosine rows only at their last checkpoint'
    )
  return rows[keep].reset_index(drop=True)


def select(points: pd.DataFrame, **equals) -> pd.DataFrame:
  """Points whose columns equal the given values (one procedure), naming any unknown value."""
  for column, value in equals.items():
    if column not in points.columns:
      raise ValueError(f'no column {column!r} to select on; the table has {list(points.columns)}')
    if value not in set(points[column]):
      raise ValueError(
          f'no points with {column}={value!r}; choose from {sorted(set(points[column]))}'
      )
    points = points[points[column] == value]
  return points


def require_single(points: pd.DataFrame, columns, label: str) -> None:
  """Refuse rows that hold several values of any of `columns`: one law through them pools
  procedures (two pretraining datasets, CLIP with MaMMUT) that a comparison must keep apart."""
  for column in columns:
    if column not in points.columns:
      continue
    values = sorted(set(points[column].map(str)))  # map: astype(str) keeps NaN a NaN
    if len(values) > 1:
      raise ValueError(
          f'the rows of {label} hold {len(values)} values of {column}: {values}; one law through'
          f' them pools them: select one with --where {column}=VALUE, or compare them with'
          f' --by {column} (compare, plot) or --across {column} (compare)'
      )


def frontier_points(points: pd.DataFrame, method: str = 'pareto_bin') -> pd.DataFrame:
  """The frontier rows of one procedure's eligible points, in increasing compute."""
  if method not in FRONTIERS:
    raise ValueError(f'unknown frontier {method!r}; choose one of {sorted(FRONTIERS)}')
  idx = FRONTIERS[method](points['x'].to_numpy(), points['error'].to_numpy())
  return points.iloc[idx].reset_index(drop=True)
