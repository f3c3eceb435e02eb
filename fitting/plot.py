"""The comparison figure: every run faint, each frontier bold, its law with a labelled band.

One colour per procedure. The law is solid over the compute it was fitted on and dashed where
it extrapolates, and its legend entry gives every parameter; held-out points are hollow,
crossovers are vertical lines. Both axes are logarithmic, labelled with units and ticked
however short their span; bands are clipped to the metric's range. Figures are vector
(.pdf, .svg) or 200 dpi .png.
"""

from __future__ import annotations

import dataclasses
import pathlib

import matplotlib

matplotlib.use('Agg')  # figures are written to files; never needs a display

import matplotlib.pyplot as plt
from matplotlib import ticker
import numpy as np

from fitting import bootstrap as bootstrap_lib
from fitting import heldout as heldout_lib
from fitting import solver
from fitting import text

FORMATS = ('pdf', 'png', 'svg')
PNG_DPI = 200


@dataclasses.dataclass
class Curve:
  label: str
  points: tuple[np.ndarray, np.ndarray]  # every eligible (x, error)
  frontier: tuple[np.ndarray, np.ndarray]
  fit: solver.Fit
  boot: bootstrap_lib.Bootstrap | None = None
  held_out: heldout_lib.HeldOut | None = None
  variable: str = 'C'  # the law's variable in its legend: compute, or D for samples seen

  def fitted_range(self) -> tuple[float, float]:
    """The compute the law was fitted on: the frontier, up to the held-out threshold where
    the law is the held-out check's own fit (not where that check is a fit of its own)."""
    x = np.asarray(self.frontier[0], np.float64)
    if self.held_out is not None and self.held_out.fit is self.fit:
      x = x[x <= self.held_out.threshold]
    return float(x.min()), float(x.max())

  def law_label(self) -> str:
    """'clip: E = a·(C + b)^c + d, a=8.3, b=3.21e+07, c=-0.178, d=0.367'."""
    law = text.law_text(self.fit.form.name, self.variable)
    values = ', '.join(f'{k}={v:.3g}' for k, v in self.fit.params.items())
    return f'{self.label}: {law}, {values}'


def check_path(path) -> None:
  """A figure path must name a vector format or PNG (written at PNG_DPI)."""
  suffix = pathlib.Path(path).suffix.lstrip('.').lower()
  if suffix not in FORMATS:
    raise ValueError(f'figure {str(path)!r} must end in one of {[f".{f}" for f in FORMATS]}')


def _log_ticks(axis, lo: float, hi: float) -> None:
  """Labelled major ticks on a log axis whatever its span (the default labels only powers of
  ten, which leave an axis spanning less than a decade bare)."""
  span = hi / lo
  if span < 10:
    axis.set_major_locator(ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
  elif span < 1000:
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
  else:
    axis.set_major_locator(ticker.LogLocator(base=10, numticks=12))
  formatter = ticker.FuncFormatter(lambda v, _: f'{v:.3g}' if span < 1000 else f'{v:.0e}')
  axis.set_major_formatter(formatter)
  axis.set_minor_formatter(ticker.NullFormatter())


def draw(
    curves: list[Curve],
    *,
    title: str = '',
    xlabel: str = 'compute (GFLOPs)',
    ylabel: str = 'error',
    y_range: tuple[float, float] = (0.0, 1.0),
    level: float = 0.95,
    crossovers=(),
    extend: float = 10.0,
):
  """The figure, not yet written; the law is drawn to `extend` × the largest compute."""
  fig, ax = plt.subplots(figsize=(7.5, 5.0))
  lo = min(c.points[0].min() for c in curves)
  hi = max(c.points[0].max() for c in curves) * extend
  grid = np.geomspace(lo, hi, 400)
  floor = max(y_range[0], 1e-12)  # a log axis cannot show 0
  clip = lambda v: np.clip(v, floor, y_range[1])
  shown = []  # the y values the axis must hold: data and laws over their fitted range
  for i, curve in enumerate(curves):
    color = f'C{i}'
    ax.scatter(*curve.points, s=8, color=color, alpha=0.2, linewidths=0)
    ax.plot(*curve.frontier, 'o', color=color, markersize=5, label=f'{curve.label} frontier')
    start, end = curve.fitted_range()
    inside = (grid >= start) & (grid <= end)
    prediction = clip(curve.fit.predict(grid))
    ax.plot(grid[inside], prediction[inside], '-', color=color, label=curve.law_label())
    for part in (grid <= start, grid >= end):  # extrapolation, below and beyond the data
      ax.plot(grid[part], prediction[part], '--', color=color, linewidth=1)
    shown += [curve.points[1], curve.frontier[1], prediction[inside]]
    if curve.boot is not None:
      band_lo, band_hi = curve.boot.prediction_interval(grid, level)
      ax.fill_between(
          grid,
          clip(band_lo),
          clip(band_hi),
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
  ax.plot([], [], '--', color='gray', linewidth=1, label='law beyond its fitted range')
  ax.set_xscale('log')
  ax.set_yscale('log')
  values = np.concatenate([np.asarray(v, np.float64).ravel() for v in shown])
  values = values[np.isfinite(values) & (values > 0)]
  y_lo, y_hi = max(values.min() / 1.15, floor), min(values.max() * 1.15, y_range[1])
  ax.set_xlim(lo, hi)
  ax.set_ylim(y_lo, y_hi)
  _log_ticks(ax.xaxis, lo, hi)
  _log_ticks(ax.yaxis, y_lo, y_hi)
  for c in crossovers:
    ax.axvline(c, color='k', linestyle=':', linewidth=1)
    ax.annotate(f'crossover {c:.2g}', (c, y_hi), rotation=90, va='top', fontsize=8)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  handles, labels = ax.get_legend_handles_labels()
  # Below the axes: the laws' labels are long, and inside they would hide the data.
  ax.legend(handles, labels, fontsize=7, loc='upper left', bbox_to_anchor=(0.0, -0.14))
  return fig


def figure(curves: list[Curve], path, **kwargs) -> None:
  """Write the figure (`draw`'s keywords) to `path`: .pdf, .svg or a 200 dpi .png."""
  check_path(path)
  fig = draw(curves, **kwargs)
  fig.savefig(path, dpi=PNG_DPI, bbox_inches='tight')
  plt.close(fig)
