"""Import and export wall time and peak host memory of the open_clip bridge, at fp32.

    python experiments/benchmarks/convert.py [--models ViT-L-14 mammut_ViT-L-14] [--repeats 3]

For each model a random state dict of the real shapes is written as open_clip's
`.safetensors`, then imported into a workdir (`python -m scaling_vlm.convert import`) and
exported back (`export`), each in a fresh process so that its peak resident memory is its own.
One line per (model, direction): the median wall time of the process and its peak RSS, also as a
multiple of the checkpoint's size (targets: < 30 s and < 2.5x on 2 cores).
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
MAKE = """
import sys
import numpy as np
from scaling_vlm import convert, models
from scaling_vlm.convert import files, layout
config = models.get_config(sys.argv[1])
rng = np.random.default_rng(0)
flat = {k: rng.standard_normal(v.shape, np.float32) * 0.02
        for k, v in convert.flat_params(models.abstract(config.replace(scan_layers=True))).items()}
files.write_safetensors(layout.to_theirs(flat, config), sys.argv[2])
"""


def peak_rss(argv: list[str]) -> tuple[float, float]:
  """(wall seconds, peak RSS bytes) read by /usr/bin/time, exact per process."""
  start = time.perf_counter()
  out = subprocess.run(
      ['/usr/bin/time', '-f', '%M', *argv], cwd=ROOT, capture_output=True, text=True, check=True
  )
  seconds = time.perf_counter() - start
  return seconds, int(out.stderr.strip().splitlines()[-1]) * 1024


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--models', nargs='+', default=['ViT-L-14', 'mammut_ViT-L-14'])
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  python = sys.executable
  for name in args.models:
    with tempfile.TemporaryDirectory() as folder:
      source = os.path.join(folder, 'model.safetensors')
      subprocess.run([python, '-c', MAKE, name, source], cwd=ROOT, check=True)
      size = os.path.getsize(source)
      results = {'import': [], 'export': []}
      for repeat in range(args.repeats):
        workdir = os.path.join(folder, f'run{repeat}')
        convert = [python, '-m', 'scaling_vlm.convert']
        results['import'].append(
            peak_rss(
                [
                    *convert,
                    'import',
                    '--model',
                    name,
                    '--checkpoint',
                    source,
                    '--samples-seen',
                    '12.8e9',
                    '--global-batch',
                    '1',
                    '--workdir',
                    workdir,
                ]
            )
        )
        out = os.path.join(folder, f'out{repeat}.safetensors')
        results['export'].append(peak_rss([*convert, 'export', '--workdir', workdir, '--out', out]))
      for direction, measured in results.items():
        seconds = [m[0] for m in measured]
        peak = max(m[1] for m in measured)
        print(
            f'bench=convert model={name} direction={direction} '
            f'seconds={statistics.median(seconds):.1f} '
            f'spread={min(seconds):.1f}-{max(seconds):.1f} repeats={args.repeats} '
            f'checkpoint_gb={size / 1e9:.2f} peak_rss_gb={peak / 1e9:.2f} '
            f'peak_over_checkpoint={peak / size:.2f}',
            flush=True,
        )


if __name__ == '__main__':
  main()
