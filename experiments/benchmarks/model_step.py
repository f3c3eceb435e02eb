"""Forward+backward step time, samples/s and MFU of zoo models.

    python experiments/benchmarks/model_step.py                      # tiny ladder on CPU
    python experiments/benchmarks/model_step.py --model ViT-B-16 --batch 256 --dtype bfloat16

One line per (model, batch): compile time, then the median over `--repeats` timings of
`--steps` consecutive steps. A step is the jitted gradient of the full training loss (the
contrastive loss, plus the caption loss for MaMMUT) on device-resident random inputs, so the
input pipeline is not measured here. MFU = training FLOPs per sample (scaling_vlm.flops) ×
samples/s ÷ the device's bf16 peak, printed where the peak is known.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
from flax import nnx

from scaling_vlm import flops, models, sharding
from scaling_vlm.train import losses, step as step_lib

import device_batch  # beside this file

TINY_LADDER = [f'{prefix}tiny-{i}' for prefix in ('', 'mammut_') for i in range(1, 6)]


def measure(name: str, batch: int, args) -> dict:
  config = models.get_config(name, dtype=args.dtype, scan_layers=args.scan, remat=args.remat)
  mesh = sharding.make_mesh()
  model = sharding.create_sharded(lambda: models.build(config), mesh)
  graphdef, params = nnx.split(model)
  batch_arrays = device_batch.random_batch(config, batch, mesh)
  with jax.set_mesh(mesh):
    # The gradient of the full training loss, exactly as the train step computes it.
    step = jax.jit(
        lambda params, batch: step_lib.loss_and_grads(
            graphdef, params, batch, losses.LossConfig(), mesh=mesh
        )
    )
    start = time.perf_counter()
    compiled = step.lower(params, batch_arrays).compile()
    compile_s = time.perf_counter() - start
    timings = device_batch.time_calls(compiled, (params, batch_arrays), args.steps, args.repeats)
  step_s = statistics.median(timings)
  samples_per_s = batch / step_s
  peak = flops.peak_flops(jax.devices()[0])
  achieved = flops.train_flops(config) * samples_per_s
  return {
      'model': name,
      'batch': batch,
      'dtype': args.dtype,
      'devices': jax.device_count(),
      'device': jax.devices()[0].device_kind,
      'compile_s': f'{compile_s:.2f}',
      'step_ms': f'{step_s * 1e3:.2f}',
      'step_ms_spread': f'{min(timings) * 1e3:.2f}-{max(timings) * 1e3:.2f}',
      'samples_per_s': f'{samples_per_s:.1f}',
      'tflops_per_s': f'{achieved / 1e12:.3f}',
      'mfu': f'{achieved / (peak * jax.device_count()):.3f}' if peak else 'n/a',
  }


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  on_cpu = jax.default_backend() == 'cpu'
  parser.add_argument('--model', nargs='+', default=TINY_LADDER if on_cpu else ['ViT-B-32'])
  parser.add_argument('--batch', nargs='+', type=int, default=[32] if on_cpu else [256])
  parser.add_argument(
      '--dtype', default='float32' if on_cpu else 'bfloat16', choices=['float32', 'bfloat16']
  )
  parser.add_argument('--scan', action='store_true', help='scan the layers of each tower')
  parser.add_argument('--remat', default='none', choices=['none', 'full', 'dots'])
  parser.add_argument('--steps', type=int, default=5, help='steps per timing')
  parser.add_argument('--repeats', type=int, default=5, help='timings; the median is printed')
  args = parser.parse_args()
  for name in args.model:
    models.get_config(name)  # an unknown name fails here, before anything is compiled
  for name in args.model:
    for batch in args.batch:
      row = measure(name, batch, args)
      print(' '.join(f'{key}={value}' for key, value in row.items()), flush=True)


if __name__ == '__main__':
  main()
