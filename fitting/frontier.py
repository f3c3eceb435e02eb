"""Pareto frontiers of (compute, error) points: the paper's binned one and the naive one.

Both return indices into the arrays they are given, in increasing x, so callers keep the
run, model and checkpoint of each frontier point.
"""

from __future__ import annotations

import numpy as np

# The paper's bin count is int(log2(x_max / 1500)): one bin per doubling of compute above a
# floor of 1,500 GFLOPs, spread geometrically over the span of the points.
BIN_FLOOR = 1500.0


def _as_arrays(x, y) -> tuple[np.ndarray, np.ndarray]:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f'x and y must be 1-D and the same length, got {x.shape} and {y.shape}')
  return x, y


def pareto_bin(x, y) -> np.ndarray:
  """The paper's frontier: best point per log-spaced bin, kept while it lowers the error.

  Points are sorted by x, then by error; nb = int(log2(x_max / 1500)) edges span
  [x_min, x_max] geometrically and form half-open bins [edge_i, edge_i+1). The lowest-error
  point of each non-empty bin, in x order, is kept if it lowers the running minimum error
  (the first always is); last, the best point at x = x_max, which no half-open bin holds,
  is added if it lowers the minimum still.
  """
  x, y = _as_arrays(x, y)
  if len(x) == 0:
    return np.zeros(0, np.int64)
  order = np.lexsort((y, x))
  xs, ys = x[order], y[order]
  x_min, x_max = xs[0], xs[-1]
  n_edges = int(np.log2(x_max / BIN_FLOOR)) if x_max > BIN_FLOOR else 0
  edges = np.geomspace(x_min, x_max, n_edges) if n_edges > 0 else np.zeros(0)
  kept: list[int] = []
  best = np.inf
  for lo, hi in zip(edges[:-1], edges[1:]):
    in_bin = np.flatnonzero((xs >= lo) & (xs < hi))
    if len(in_bin) == 0:
      continue
    i = in_bin[np.argmin(ys[in_bin])]  # first of equal errors: the smallest x
    if ys[i] < best:
      kept.append(i)
      best = ys[i]
  at_max = np.flatnonzero(xs == x_max)
  i = at_max[np.argmin(ys[at_max])]
  if ys[i] < best:
    kept.append(i)
  return order[np.array(kept, np.int64)]


def pareto_naive(x, y) -> np.ndarray:
  """Points that no other point matches or beats on both axes while being strictly better."""
  x, y = _as_arrays(x, y)
  order = np.lexsort((y, x))
  kept, best = [], np.inf
  for i in order:  # by x, ties by error: a point survives if it beats every smaller-x point
    if y[i] < best:
      kept.append(i)
      best = y[i]
  return np.array(kept, np.int64)


def every_point(x, y) -> np.ndarray:
  """No frontier: every point, by compute. For runs that give one point each (cosine runs),
  where a frontier would keep only those that happen to beat every cheaper one."""
  x, _ = _as_arrays(x, y)
  return np.argsort(x, kind='stable')
