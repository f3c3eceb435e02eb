"""What a sweep's second schedule costs to start: a constant run, then a cosine run of the same
model with another peak rate, sharing one persistent compilation cache.

    python experiments/benchmarks/schedule_compile.py --model tiny-1 mammut_tiny-4

Each run is a fresh `python -m scaling_vlm.train` process, as the launcher and the mini study
start them, training 8 steps; the cache starts empty for each repeat. One line per (model,
schedule): the median wall time of the process over `--repeats`. The cosine run needs no
compilation of the train step where the step does not depend on the schedule.
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
sys.path.insert(0, ROOT)

from scaling_vlm import models  # noqa: E402
RUNS = (('const', '1e-3'), ('cosine', '3e-3'))  # in this order: the cosine run comes second


def train_seconds(model: str, schedule: str, lr: str, workdir: str, cache: str) -> float:
  arch = models.get_config(model).arch
  command = [
      sys.executable,
      '-m',
      'scaling_vlm.train',
      f'--config=configs/{arch}.py:{model}',
      f'--workdir={workdir}',
      '--config.train.samples=256',
      '--config.train.global_batch=32',
      '--config.train.warmup=64',
      f'--config.optim.schedule={schedule}',
      f'--config.optim.lr={lr}',
      '--config.checkpoint.milestones=256',
      '--config.log.tensorboard=False',
  ]
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache)
  start = time.perf_counter()
  subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
  return time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', nargs='+', default=['tiny-1', 'mammut_tiny-4'])
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  for model in args.model:
    seconds = {schedule: [] for schedule, _ in RUNS}
    for _ in range(args.repeats):
      with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, 'xla_cache')
        for schedule, lr in RUNS:
          workdir = os.path.join(tmp, schedule)
          seconds[schedule].append(train_seconds(model, schedule, lr, workdir, cache))
    for schedule, lr in RUNS:
      runs = ','.join(f'{s:.1f}' for s in seconds[schedule])
      print(
          f'model={model} schedule={schedule} lr={lr} steps=8 '
          f'process_s={statistics.median(seconds[schedule]):.1f} runs_s={runs}',
          flush=True,
      )


if __name__ == '__main__':
  main()
