"""Speed of the 3,200-start saturation_both fit against the paper's scipy curve_fit loop.

    python experiments/benchmarks/fit_speed.py
    python experiments/benchmarks/fit_speed.py --scipy-starts 3200   # time the full scipy loop
    python experiments/benchmarks/fit_speed.py --cold-only --fitting-from /tmp/old  # a baseline

Both fit the same frontier: 25 points of a law like the paper's ImageNet error curves
(E = 70·(C + e^18)^-0.25 + 0.15, C from 1e6 to 1e11 GFLOPs, Gaussian noise 0.005). Prints one
line per measurement: the first call (compile + run) and its compile share, the warm fit
(median of --repeats), the scipy TRF loop over the same starts (a strided subset of them,
extrapolated to all 3,200 unless --scipy-starts 3200), the speed-up, both optima, and
1,000 bootstrap replicates (first call, then warm median).

Then what a researcher waits for: `python -m fitting fit` on the same points as a results
table, each in a new process from start to exit, with the persistent compilation cache off,
cold (an empty cache directory) and warm (one filled by an earlier run); median of
--cold-repeats, wall and CPU seconds, with the load average, since on a shared machine the
wall time depends on it. --fitting-from DIR times the `fitting` package in DIR instead (e.g.
a `git worktree` of an earlier commit), whose CLI may not know the cache.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
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


def write_table(x, y, path) -> None:
  """The points as a results table: one cosine run per point, at its final checkpoint."""
  samples = x / 10.0  # 10 GFLOPs per sample
  rows = pd.DataFrame(
      dict(
          run_id=[f'run{i}' for i in range(len(x))],
          arch='clip',
          model='bench',
          pretrain_dataset='bench',
          lr_schedule='cosine',
          lr=1e-3,
          global_batch_size=1024,
          warmup=0,
          total_samples=samples,
          samples_seen=samples,
          gflops_per_sample=10.0,
          compute_gflops=x,
          params=1e8,
          task='bench',
          metric='acc1',
          value=1 - y,
      )
  )
  rows.to_csv(path, index=False)


def cold_run(table, cache, root) -> tuple[float, float]:
  """Wall and CPU seconds of one `python -m fitting fit` process, start to exit."""
  env = dict(os.environ, FITTING_COMPILE_CACHE=str(cache) if cache else 'off')
  command = [sys.executable, '-m', 'fitting', 'fit', '--results', str(table), '--task', 'bench']
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
  return wall, cpu


def cold_lines(x, y, repeats: int, root) -> None:
  """One line per cache state: median wall and CPU time of `repeats` fresh processes."""
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    table = tmp / 'results.csv'
    write_table(x, y, table)
    warm = tmp / 'warm'
    cold_run(table, warm, root)  # fills the warm cache; not timed
    states = (
        ('cache off', lambda i: None),
        ('cache cold', lambda i: tmp / f'cold{i}'),  # a new, empty directory each time
        ('cache warm', lambda i: warm),
    )
    for name, cache in states:
      load = os.getloadavg()
      times = [cold_run(table, cache(i), root) for i in range(repeats)]
      wall = statistics.median(t[0] for t in times)
      cpu = statistics.median(t[1] for t in times)
      print(
          f'python -m fitting fit, new process, {name}: {wall:.2f} s wall, {cpu:.2f} s CPU'
          f' (median of {repeats}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})'
      )


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--points', type=int, default=25, help='frontier points')
  parser.add_argument('--repeats', type=int, default=5, help='timings per median')
  parser.add_argument('--scipy-starts', type=int, default=320, help='scipy starts to time')
  parser.add_argument('--replicates', type=int, default=1000, help='bootstrap replicates')
  parser.add_argument('--cold-repeats', type=int, default=3, help='new processes per median')
  parser.add_argument('--cold-only', action='store_true', help='only the new-process lines')
  parser.add_argument(
      '--fitting-from',
      type=pathlib.Path,
      default=pathlib.Path(__file__).resolve().parents[2],
      metavar='DIR',
      help='folder holding the fitting package to time in new processes (default: this one)',
  )
  args = parser.parse_args()

  rng = np.random.default_rng(0)
  x = np.geomspace(1e6, 1e11, args.points)
  y = law(x, 70.0, np.exp(18.0), -0.25, 0.15) + rng.normal(0, 5e-3, x.shape)
  grid = forms.paper_grid()
  if args.cold_only:
    cold_lines(x, y, args.cold_repeats, args.fitting_from)
    return

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
  cold_lines(x, y, args.cold_repeats, args.fitting_from)


if __name__ == '__main__':
  main()
