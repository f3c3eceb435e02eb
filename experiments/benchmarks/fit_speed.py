"""Speed of the 3,200-start saturation_both fit against the paper's scipy curve_fit loop.

    python experiments/benchmarks/fit_speed.py
    python experiments/benchmarks/fit_speed.py --scipy-starts 3200   # time the full scipy loop

Both fit the same frontier: 25 points of a law like the paper's ImageNet error curves
(E = 70·(C + e^18)^-0.25 + 0.15, C from 1e6 to 1e11 GFLOPs, Gaussian noise 0.005). Prints one
line per measurement: the first call (compile + run) and its compile share, the warm fit
(median of --repeats), the scipy TRF loop over the same starts (a strided subset of them,
extrapolated to all 3,200 unless --scipy-starts 3200), the speed-up, both optima, and
1,000 bootstrap replicates (first call, then warm median).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from scipy import optimize

from fitting import bootstrap, forms, solver


def law(x, a, b, c, d):
  return a * (x + b) ** c + d


def timed(fn):
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def scipy_loop(x, y, starts) -> float:
  """The paper's loop: curve_fit (TRF, bounds) from each start, keep the lowest MSE."""
  bounds = ([0, 0, -np.inf, 0], [np.inf, np.inf, 0, np.inf])
  best = np.inf
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # overflow warnings from starts that wander off
    for start in starts:
      try:
        p, _ = optimize.curve_fit(law, x, y, p0=start, bounds=bounds, method='trf', maxfev=10_000)
      except (RuntimeError, ValueError):
        continue
      best = min(best, float(np.mean((law(x, *p) - y) ** 2)))
  return best


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--points', type=int, default=25, help='frontier points')
  parser.add_argument('--repeats', type=int, default=5, help='timings per median')
  parser.add_argument('--scipy-starts', type=int, default=320, help='scipy starts to time')
  parser.add_argument('--replicates', type=int, default=1000, help='bootstrap replicates')
  args = parser.parse_args()

  rng = np.random.default_rng(0)
  x = np.geomspace(1e6, 1e11, args.points)
  y = law(x, 70.0, np.exp(18.0), -0.25, 0.15) + rng.normal(0, 5e-3, x.shape)
  grid = forms.paper_grid()

  fit, first = timed(lambda: solver.fit('saturation_both', x, y))
  warm = statistics.median(
      timed(lambda: solver.fit('saturation_both', x, y))[1] for _ in range(args.repeats)
  )
  print(f'fit 3200 starts, first call (compile + run): {first:.2f} s')
  print(f'fit 3200 starts, compile (first - warm): {first - warm:.2f} s')
  print(f'fit 3200 starts, warm: {warm:.3f} s (median of {args.repeats})')

  stride = max(1, len(grid) // args.scipy_starts)
  subset = grid[::stride]
  scipy_best, scipy_time = timed(lambda: scipy_loop(x, y, subset))
  scipy_full = scipy_time * len(grid) / len(subset)
  how = (
      'measured'
      if len(subset) == len(grid)
      else f'extrapolated from {len(subset)} strided starts taking {scipy_time:.2f} s'
  )
  print(f'scipy curve_fit TRF loop, 3200 starts: {scipy_full:.1f} s ({how})')
  print(f'speed-up over the scipy loop: {scipy_full / warm:.0f}x')
  print(
      f'best MSE: ours {fit.mse:.6e} (all 3200 starts), scipy {scipy_best:.6e}'
      f' ({len(subset)} starts); share of starts at our best: {fit.share_at_best:.2f}'
  )

  run = lambda: bootstrap.resample_points(fit, x, y, n=args.replicates, seed=0)
  _, boot_first = timed(run)
  boot_warm = statistics.median(timed(run)[1] for _ in range(max(1, args.repeats // 2)))
  print(f'bootstrap {args.replicates} replicates, first call (compile + run): {boot_first:.2f} s')
  print(f'bootstrap {args.replicates} replicates, warm: {boot_warm:.2f} s')


if __name__ == '__main__':
  main()
