"""Held-out check: fit on frontier points up to a compute threshold, predict the ones above."""

from __future__ import annotations

import dataclasses

import numpy as np

from fitting import solver


@dataclasses.dataclass(frozen=True)
class HeldOut:
  fit: solver.Fit
  threshold: float
  x: np.ndarray  # held-out compute, increasing
  actual: np.ndarray
  predicted: np.ndarray

  @property
  def relative_error(self) -> np.ndarray:
    """(predicted - actual) / actual: positive means the law was too pessimistic."""
    return (self.predicted - self.actual) / self.actual

  def rows(self) -> list[dict[str, float]]:
    return [
        dict(x=float(x), actual=float(a), predicted=float(p), relative_error=float(e))
        for x, a, p, e in zip(self.x, self.actual, self.predicted, self.relative_error)
    ]


def held_out(
    x, y, threshold: float, form='saturation_both', *, fitter=solver.fit, **fit_kwargs
) -> HeldOut:
  """Fit `form` on points with x <= threshold and predict every point above it.

  `fitter(form, x, y, **fit_kwargs)` fits the points below: `solver.fit`, or the same with a
  cache in front, for a caller whose held-out fits may repeat fits it already has.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  train, test = x <= threshold, x > threshold
  if not test.any():
    raise ValueError(f'no points above the threshold {threshold:g} (largest x is {x.max():g})')
  fit = fitter(form, x[train], y[train], **fit_kwargs)
  order = np.argsort(x[test])
  x_test, y_test = x[test][order], y[test][order]
  return HeldOut(fit, threshold, x_test, y_test, fit.predict(x_test))
