"""The comparison figure: every run faint, each frontier bold, its law with a labelled band.

One colour per procedure; held-out points are hollow, crossovers are vertical lines.
"""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use('Agg')  # figures are written to files; never needs a display

import matplotlib.pyplot as plt
import numpy as np

from fitting import bootstrap as bootstrap_lib
from fitting import heldout as heldout_lib
from fitting import solver


@dataclasses.dataclass
class Curve:
  label: str
  points: tuple[np.ndarray, np.ndarray]  # every eligible (x, error)
  frontier: tuple[np.ndarray, np.ndarray]
  fit: solver.Fit
  boot: bootstrap_lib.Bootstrap | None = None
  held_out: heldout_lib.HeldOut | None = None


def figure(
    curves: list[Curve],
    path,
    *,
    title: str = '',
    xlabel: str = 'compute (GFLOPs)',
    ylabel: str = 'error',
    level: float = 0.95,
    crossovers=(),
    extend: float = 10.0,
) -> None:
  """Write the figure to `path`; the law is drawn to `extend` × the largest compute."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  lo = min(c.points[0].min() for c in curves)
  hi = max(c.points[0].max() for c in curves) * extend
  grid = np.geomspace(lo, hi, 300)
  for i, curve in enumerate(curves):
    color = f'C{i}'
    ax.scatter(*curve.points, s=8, color=color, alpha=0.2, linewidths=0)
    ax.plot(*curve.frontier, 'o', color=color, markersize=5, label=f'{curve.label} frontier')
    params = curve.fit.params
    fitted = ', '.join(f'{k}={v:.3g}' for k, v in params.items() if k != 'b')
    ax.plot(grid, curve.fit.predict(grid), '-', color=color, label=f'{curve.label}: {fitted}')
    if curve.boot is not None:
      band_lo, band_hi = curve.boot.prediction_interval(grid, level)
      ax.fill_between(
          grid,
          band_lo,
          band_hi,
          color=color,
          alpha=0.2,
          linewidth=0,
          label=f'{curve.label} {100 * level:.0f}% bootstrap interval',
      )
    if curve.held_out is not None:
      ax.plot(
          curve.held_out.x,
          curve.held_out.actual,
          'o',
          mfc='none',
          color=color,
          markersize=9,
          label=f'{curve.label} held out (> {curve.held_out.threshold:.2g})',
      )
  for c in crossovers:
    ax.axvline(c, color='k', linestyle=':', linewidth=1)
    ax.annotate(f'crossover {c:.2g}', (c, ax.get_ylim()[1]), rotation=90, va='top', fontsize=8)
  ax.set_xscale('log')
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
