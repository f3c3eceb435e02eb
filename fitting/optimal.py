"""Compute-optimal allocation: samples seen (and model size) on the frontier vs compute.

The frontier points are the compute-optimal runs; a log-log line through their samples seen
(or parameters) against compute gives the exponent of the allocation rule N_opt ∝ C^slope.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fitting import forms


def allocation(frontier: pd.DataFrame, quantity: str = 'samples_seen') -> dict:
  """Power law quantity = exp(intercept) · C^slope fitted on the frontier rows."""
  if quantity not in frontier.columns:
    raise ValueError(f'no column {quantity!r} on the frontier')
  values = frontier[quantity].to_numpy(np.float64)
  if np.isnan(values).any():
    raise ValueError(f'{quantity} is missing (NaN) for some frontier points')
  if len(values) < 2:
    raise ValueError(f'a log-log line needs at least 2 frontier points, got {len(values)}')
  slope, intercept = forms.loglog_line(frontier['x'], values)
  return dict(quantity=quantity, slope=slope, coefficient=float(np.exp(intercept)), n=len(values))
