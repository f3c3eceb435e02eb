"""How fast a bad config is refused: seconds from process start to the one-line error.

    python experiments/benchmarks/config_errors.py [--repeats 5]

Each case is a fresh `python -m scaling_vlm.train` process, as a user starts it; the figure is
the median wall time over `--repeats`, with the spread, the exit status and the error line (the
target is <= 2 s on 2 cores, with no JAX backend started). One line per case.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = {
    'bad_key': ['--config.optim.learning_rate=1e-3'],
    'bad_range': ['--config.optim.lr=-1'],
    'bad_milestones': ['--config.checkpoint.milestones=2k,1k'],
}


def refuse(flags: list[str], workdir: str) -> tuple[float, int, str]:
  """(seconds, exit status, last stderr line) of one refused start."""
  argv = [sys.executable, '-m', 'scaling_vlm.train', '--config=configs/clip.py:tiny-1']
  start = time.perf_counter()
  out = subprocess.run(
      [*argv, f'--workdir={workdir}', *flags], cwd=ROOT, capture_output=True, text=True
  )
  seconds = time.perf_counter() - start
  return seconds, out.returncode, (out.stderr.strip().splitlines() or [''])[-1]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as folder:
    for case, flags in CASES.items():
      workdir = os.path.join(folder, case)
      results = [refuse(flags, workdir) for _ in range(args.repeats)]
      seconds = [r[0] for r in results]
      _, status, line = results[-1]
      written = os.path.exists(workdir)
      print(
          f'bench=config_error case={case} seconds={statistics.median(seconds):.2f} '
          f'spread={min(seconds):.2f}-{max(seconds):.2f} repeats={args.repeats} '
          f'exit={status} workdir_written={written} error={line[:100]!r}',
          flush=True,
      )


if __name__ == '__main__':
  main()
