"""Evaluation speed: images/s of embedding extraction, and the wall time to evaluate every
milestone of a tiny run.

    python experiments/benchmarks/eval_throughput.py                    # tiny ladder on CPU
    python experiments/benchmarks/eval_throughput.py --models ViT-B-32 --batch 256 --images 4096

Extraction lines: the median of `--repeats` passes of `evaluate.embeddings.image_embeddings`
(eval crop, normalisation on the device, the jitted image tower) over `--images` pre-rendered
synthetic images, after one pass that compiles; rendering the synthetic world is not counted.
The run line trains a tiny CLIP run with `--milestones` checkpoints (not timed), then times
`python -m scaling_vlm.evaluate` on it with the default synthetic tasks at `--eval_size`
images each, first from scratch and then again (the idempotent rerun).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import jax

from configs import presets
from scaling_vlm import models, run
from scaling_vlm.data import synthetic
from scaling_vlm.evaluate import milestones
from scaling_vlm.evaluate.embeddings import image_embeddings
from scaling_vlm.train import trainer

TINY_LADDER = [f'{prefix}tiny-{i}' for prefix in ('', 'mammut_') for i in range(1, 6)]


def extraction(name: str, args) -> str:
  model = models.build(name, dtype=args.dtype)
  size = model.config.vision.image_size
  world = synthetic.SyntheticWorld(seed=0, image_size=size, split='val')
  records = [{'key': str(i), 'image': world[i]['image']} for i in range(args.images)]
  start = time.perf_counter()
  image_embeddings(model, records, size, batch_size=args.batch)
  first = time.perf_counter() - start
  timings = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    image_embeddings(model, records, size, batch_size=args.batch)
    timings.append(time.perf_counter() - start)
  rate = args.images / statistics.median(timings)
  return (
      f'extract {name:16s} {size}px batch {args.batch}: {rate:9.1f} images/s'
      f' (first pass with compile {first:.1f}s) on {jax.devices()[0].device_kind}'
  )


def run_evaluation(args) -> str:
  config = presets.make('clip', args.run_model)
  config.train.global_batch = 64
  config.train.samples = str(64 * args.run_steps)
  config.train.warmup = '640'
  config.log.tensorboard = False
  config.checkpoint.milestones = f'geometric:{args.milestones}'
  with tempfile.TemporaryDirectory() as workdir:
    trainer.train(config, workdir)
    saved = len(run.RunPlan.from_config(config).milestone_steps)
    times, rows = [], []
    for _ in range(2):
      start = time.perf_counter()
      summary = milestones.evaluate_run(
          workdir, synthetic_size=args.eval_size, batch_size=args.batch
      )
      times.append(time.perf_counter() - start)
      rows.append(summary.rows)
  return (
      f'evaluate run {args.run_model} ({saved} milestones x 5 synthetic tasks x '
      f'{args.eval_size} images): {times[0]:.1f}s, {rows[0]} rows; rerun {times[1]:.2f}s,'
      f' {rows[1]} rows'
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--models', nargs='+', default=TINY_LADDER)
  parser.add_argument('--dtype', default='float32')
  parser.add_argument('--batch', type=int, default=256)
  parser.add_argument('--images', type=int, default=2048)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--run_model', default='tiny-1')
  parser.add_argument('--run_steps', type=int, default=100)
  parser.add_argument('--milestones', type=int, default=4, help='per decade of samples seen')
  parser.add_argument('--eval_size', type=int, default=1000)
  args = parser.parse_args()
  for name in args.models:
    print(extraction(name, args), flush=True)
  if args.run_steps:
    print(run_evaluation(args), flush=True)


if __name__ == '__main__':
  main()
