"""Training throughput: the full train step (loss, gradients, AdamW, clamp) per configuration.

    python experiments/benchmarks/train_throughput.py                       # CPU: tiny ladder, batch 1x/2x/4x
    python experiments/benchmarks/train_throughput.py --model ViT-B-16 --batch 256 --dtype bfloat16
    python experiments/benchmarks/train_throughput.py --model tiny-3 --pipeline   # real grain input

Each configuration runs in a fresh subprocess, so its peak host memory (ru_maxrss) is its
own. One line each: compile time, median step time over `--repeats` timings of `--steps`
steps (and their spread), samples/s, MFU where the device's peak is known, peak host memory.
Inputs are device-resident random batches unless `--pipeline` feeds the real synthetic-world
grain pipeline (then `data_wait` is the fraction of the step spent waiting for data).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

TINY_LADDER = ['tiny-1', 'tiny-2', 'tiny-3', 'tiny-4', 'tiny-5']


def measure(args) -> dict:
  import jax

  import device_batch  # beside this file
  from configs import presets
  from scaling_vlm import flops, sharding
  from scaling_vlm.data import pipeline, sources
  from scaling_vlm.train import losses, schedules, step as step_lib, trainer

  config = presets.make('mammut' if args.model.startswith('mammut') else 'clip', args.model)
  config.model.dtype = args.dtype
  config.model.scan_layers = args.scan
  config.model.remat = args.remat
  config.train.global_batch = args.batch
  arch = trainer.model_config(config)
  mesh = sharding.make_mesh()
  schedule = schedules.learning_rate('const', peak=1e-3, warmup_steps=0, total_steps=10**6)
  optimizer = step_lib.adamw(schedule, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.2, grad_clip=1.0)
  graphdef, state = trainer.create_train_state(arch, optimizer, mesh, seed=0)
  train_step = step_lib.make_train_step(
      graphdef,
      optimizer,
      schedule,
      losses.LossConfig(),
      mesh=mesh,
      micro_batches=args.micro_batches,
  )
  v = arch.vision
  if args.pipeline:
    host = pipeline.host_batches(
        sources.make_source(config.data, v.image_size),
        tokenizer=sources.make_tokenizer(config.data, arch.text),
        image_size=v.image_size,
        global_batch=args.batch,
        seed=0,
        num_workers=args.workers,
    )
    batches = pipeline.Batches(host, mesh, args.batch, 10**9)
  else:
    fixed = device_batch.random_batch(arch, args.batch, mesh)
    batches = iter(lambda: fixed, None)

  with jax.set_mesh(mesh):
    batch = next(batches)
    start = time.perf_counter()
    compiled = train_step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    timings, waits = [], []
    for _ in range(args.repeats):
      wait = 0.0
      start = time.perf_counter()
      for _ in range(args.steps):
        t0 = time.perf_counter()
        batch = next(batches)
        wait += time.perf_counter() - t0
        state, metrics = compiled(state, batch)
      jax.block_until_ready(metrics)
      elapsed = time.perf_counter() - start
      timings.append(elapsed / args.steps)
      waits.append(wait / elapsed)
  step_s = statistics.median(timings)
  peak = flops.peak_flops(jax.devices()[0])
  achieved = flops.train_flops(arch) * args.batch / step_s
  return {
      'model': args.model,
      'batch': args.batch,
      'dtype': args.dtype,
      'micro_batches': args.micro_batches,
      'input': 'grain' if args.pipeline else 'device',
      'device': jax.devices()[0].device_kind,
      'devices': jax.device_count(),
      'compile_s': round(compile_s, 2),
      'step_ms': round(step_s * 1e3, 2),
      'step_ms_spread': f'{min(timings) * 1e3:.2f}-{max(timings) * 1e3:.2f}',
      'samples_per_s': round(args.batch / step_s, 1),
      'mfu': round(achieved / (peak * jax.device_count()), 3) if peak else 'n/a',
      'data_wait': round(statistics.median(waits), 3),
      'peak_host_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
  }


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--model', nargs='+', default=None)
  parser.add_argument('--batch', nargs='+', type=int, default=None)
  parser.add_argument('--dtype', default=None, choices=['float32', 'bfloat16'])
  parser.add_argument('--scan', action='store_true')
  parser.add_argument('--remat', default='none', choices=['none', 'full', 'dots'])
  parser.add_argument('--micro-batches', type=int, default=1)
  parser.add_argument('--pipeline', action='store_true', help='feed the real grain pipeline')
  parser.add_argument('--workers', type=int, default=0, help='grain workers with --pipeline')
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--one', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args()

  if args.one:  # the child: one configuration
    args.model, args.batch = args.model[0], args.batch[0]
    print(json.dumps(measure(args)), flush=True)
    return

  import jax  # the parent only asks which backend it is on

  on_cpu = jax.default_backend() == 'cpu'
  models = args.model or (TINY_LADDER if on_cpu else ['ViT-B-32'])
  batches = args.batch or ([32, 64, 128] if on_cpu else [256])
  dtype = args.dtype or ('float32' if on_cpu else 'bfloat16')
  for model in models:
    for batch in batches:
      child = [
          sys.executable,
          __file__,
          '--one',
          '--model',
          model,
          '--batch',
          str(batch),
          '--dtype',
          dtype,
          '--remat',
          args.remat,
          '--micro-batches',
          str(args.micro_batches),
          '--steps',
          str(args.steps),
          '--repeats',
          str(args.repeats),
          '--workers',
          str(args.workers),
      ]
      child += ['--scan'] * args.scan + ['--pipeline'] * args.pipeline
      out = subprocess.run(child, capture_output=True, text=True)
      if out.returncode:
        print(f'model={model} batch={batch} error={out.stderr.strip().splitlines()[-1]!r}')
        continue
      row = json.loads(out.stdout.strip().splitlines()[-1])
      print(' '.join(f'{k}={v}' for k, v in row.items()), flush=True)


if __name__ == '__main__':
  main()
