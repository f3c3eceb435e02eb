"""Replicate runs: runs of one configuration (procedure, model, samples) that differ in `seed`.

A run's error holds seed noise. A bootstrap that draws runs cannot see it unless the table
holds several seeds of a configuration; then it draws configurations, and each drawn
configuration's seeds, so its intervals include the noise of retraining with another seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from fitting import filters, table

# The results table's optional column (`fitting.table.OPTIONAL_COLUMNS`) of training seeds.
SEED = 'seed'


@dataclasses.dataclass(frozen=True)
class Replicates:
  """Per point, its run and its configuration; per configuration, how many seeds it has."""

  run: np.ndarray  # [N] run id, with the seed: one run of a configuration
  config: np.ndarray  # [N] configuration index; runs sharing one are replicates
  seeds: np.ndarray  # [configurations] distinct seeds of each

  @property
  def present(self) -> bool:
    """Whether any configuration was trained with more than one seed."""
    return bool(np.any(self.seeds > 1))

  def seed_noise(self) -> str:
    """How a bootstrap over these runs treats seed noise, in words for a report."""
    if not self.present:
      return 'excluded: one seed per run'
    lo, hi = int(self.seeds.min()), int(self.seeds.max())
    return f'included ({hi} seeds)' if lo == hi else f'included ({lo}-{hi} seeds per configuration)'


def _seeds(points: pd.DataFrame) -> pd.Series:
  """The seed of each row; 0 where the table has none (a table of one seed per run)."""
  if SEED not in points.columns:
    return pd.Series(0, index=points.index)
  return pd.to_numeric(points[SEED], errors='coerce').fillna(0).astype(np.int64)


def find(points: pd.DataFrame) -> Replicates:
  """The runs, configurations and seed counts of a procedure's points."""
  # Keys as plain strings, `map(str)` and not `astype(str)`: pandas keeps NaN (a paper
  # table's lr, an empty cooldown) missing through `astype(str)`, and a missing key is no key.
  columns = [points[c].map(str) for c in table.RUN_CONFIG_COLUMNS]
  columns.append(pd.Series(filters.cooldown_samples(points), index=points.index).map(str))
  config, _ = pd.factorize(np.array(['|'.join(key) for key in zip(*columns)]))
  seeds = _seeds(points).to_numpy()
  run = np.array([f'{r}|seed={s}' for r, s in zip(points['run_id'].map(str), seeds)])
  per_config = pd.DataFrame({'config': config, 'seed': seeds}).groupby('config')['seed']
  return Replicates(run=run, config=config, seeds=per_config.nunique().to_numpy())
