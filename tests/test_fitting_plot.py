"""The figure: labelled log axes with ticks, clipped bands, the extrapolation drawn apart, the
whole law in the legend, and a resolution or vector format fit for a paper."""

import dataclasses

import numpy as np
import pytest
from matplotlib import collections
from matplotlib import pyplot as plt
from PIL import Image

from fitting import bootstrap, heldout, plot, solver

X = np.geomspace(1e7, 1e11, 12)


def law(x):
  return 3.0 * (x + np.exp(17.0)) ** -0.1 + 0.2


@pytest.fixture(scope='module')
def curve():
  rng = np.random.default_rng(0)
  y = law(X) + rng.normal(0, 5e-3, X.shape)
  # A wide band: a few points resampled, so far beyond the data it spans the metric's range.
  held = heldout.held_out(X, y, 1e10)
  boot = bootstrap.resample_points(held.fit, X[X <= 1e10], y[X <= 1e10], n=32, seed=0)
  return plot.Curve('clip', (X, y + 0.02), (X, y), held.fit, boot, held)


@pytest.fixture
def axes(curve):
  fig = plot.draw([curve], xlabel='compute (GFLOPs)', ylabel='error = 1 - acc1', extend=1e4)
  yield fig.axes[0]
  plt.close(fig)


def test_axes_are_labelled_with_units_and_ticked_however_short(axes):
  assert axes.get_xlabel() == 'compute (GFLOPs)' and axes.get_ylabel() == 'error = 1 - acc1'
  assert axes.get_xscale() == axes.get_yscale() == 'log'
  axes.figure.canvas.draw()
  for axis, (lo, hi) in ((axes.xaxis, axes.get_xlim()), (axes.yaxis, axes.get_ylim())):
    labelled = [
        t for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_text()
    ]
    assert len(labelled) >= 2, (axis, lo, hi)
  # The error axis spans less than a decade, where default log ticks would label nothing.
  assert axes.get_ylim()[1] / axes.get_ylim()[0] < 10


def test_bands_stay_in_the_metric_range():
  # Half the replicates put the law 30 times higher: their band runs far above error 1.
  fit = solver.fit('power_law', X, 2.0 * X**-0.1)
  thetas = np.repeat(fit.theta[None], 20, axis=0)
  thetas[::2, 0] += np.log(30.0)
  boot = bootstrap.Bootstrap(fit, thetas, 0)
  assert boot.prediction_interval(X)[1].max() > 5  # unclipped
  curve = plot.Curve('clip', (X, fit.predict(X)), (X, fit.predict(X)), fit, boot)
  fig = plot.draw([curve], y_range=(0.0, 1.0))
  (band,) = [c for c in fig.axes[0].collections if isinstance(c, collections.PolyCollection)]
  ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
  plt.close(fig)
  assert ys.max() == pytest.approx(1.0) and ys.min() > 0


def test_the_law_is_dashed_beyond_the_fitted_range_and_labelled_in_full(axes, curve):
  fitted_max = X[X <= 1e10].max()
  lines = [l for l in axes.get_lines() if l.get_color() == 'C0' and len(l.get_xdata()) > 20]
  solid = [l for l in lines if l.get_linestyle() == '-']
  dashed = [l for l in lines if l.get_linestyle() == '--']
  assert len(solid) == 1 and solid[0].get_xdata().max() <= fitted_max
  assert any(l.get_xdata().min() >= fitted_max * 0.99 for l in dashed)
  label = solid[0].get_label()
  assert label.startswith('clip: E = a·(C + b)^c + d, ')
  for name, value in curve.fit.params.items():
    assert f'{name}={value:.3g}' in label


def test_png_is_200_dpi_and_other_formats_are_refused(curve, tmp_path):
  plot.figure([curve], tmp_path / 'laws.png')
  dpi = Image.open(tmp_path / 'laws.png').info['dpi']
  assert dpi[0] == pytest.approx(200, abs=1)
  plot.figure([curve], tmp_path / 'laws.svg')
  assert (tmp_path / 'laws.svg').read_text().lstrip().startswith('<?xml')
  with pytest.raises(ValueError, match=r"must end in one of \['.pdf', '.png', '.svg'\]"):
    plot.figure([curve], tmp_path / 'laws.jpg')


def test_fitted_range_stops_at_the_held_out_threshold(curve):
  assert curve.fitted_range() == (X.min(), X[X <= 1e10].max())
  whole = plot.Curve('a', curve.points, curve.frontier, solver.fit('power_law', X, law(X)))
  assert whole.fitted_range() == (X.min(), X.max())
  # A law fitted on every point, beside a held-out check of its own (as the mini study has).
  checked = dataclasses.replace(whole, held_out=curve.held_out)
  assert checked.fitted_range() == (X.min(), X.max())
