"""CLIMP's Mamba vision tower against a ViT of the same width and depth, as the sequence grows.

    python experiments/benchmarks/climp_vs_vit.py                         # CPU: width 64, 2 layers
    python experiments/benchmarks/climp_vs_vit.py --width 768 --layers 12 --batch 32 --dtype bfloat16

Sequence length L = patches per image: images of sqrt(L) x patch pixels a side (the ViT adds
its class token). One line per (model, L): parameters, compile time, the median over
`--repeats` timings of a jitted forward+backward (the gradient of the embeddings' sum with
respect to every tower parameter), its spread, the temporary memory XLA plans for it
(`memory_analysis()`: activations and workspace, not parameters or inputs) and, on GPUs and
TPUs, the device's peak bytes in use so far. `x_prev` is the step time over that of the
previous length (x4 tokens each): ~4 for linear growth, ~16 for quadratic.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_vlm import models
from scaling_vlm.models.climp import MambaVisionTower
from scaling_vlm.models.config import SCAN_IMPLS, ModelConfig, TextConfig, VisionConfig
from scaling_vlm.models.vit import VisionTower

import device_batch  # beside this file


def tower(kind: str, length: int, args):
  grid = math.isqrt(length)
  if grid * grid != length:
    raise ValueError(f'sequence length {length} is not a square number of patches.')
  vision = VisionConfig(
      args.width, args.layers, max(1, args.width // 64), args.patch, image_size=grid * args.patch
  )
  text = TextConfig(args.width, 1, 1, context_length=8, vocab_size=16)  # unused
  config = ModelConfig(
      'bench', 'clip' if kind == 'vit' else 'climp', args.width, vision, text, dtype=args.dtype
  )
  config = config.replace(
      **{
          'vision_ssm.scan_impl': args.impl,
          'vision_ssm.chunk': args.chunk,
          'vision_ssm.state': args.state,
      }
  )
  cls = VisionTower if kind == 'vit' else MambaVisionTower
  return cls(config, nnx.Rngs(params=0)), grid * args.patch


def measure(kind: str, length: int, args) -> dict:
  model, size = tower(kind, length, args)
  graphdef, params = nnx.split(model)
  images = jax.random.normal(jax.random.key(0), (args.batch, size, size, 3))

  @jax.jit
  def step(params, images):
    loss = lambda p: jnp.sum(nnx.merge(graphdef, p)(images)[0].astype(jnp.float32))
    return jax.grad(loss)(params)

  start = time.perf_counter()
  compiled = step.lower(params, images).compile()
  compile_s = time.perf_counter() - start
  memory = compiled.memory_analysis()
  timings = device_batch.time_calls(compiled, (params, images), args.steps, args.repeats)
  stats = jax.devices()[0].memory_stats() or {}
  return {
      'model': 'climp' if kind == 'climp' else 'vit',
      'L': length,
      'width': args.width,
      'layers': args.layers,
      'batch': args.batch,
      'dtype': args.dtype,
      'device': jax.devices()[0].device_kind,
      'params': f'{models.count_params(model) / 1e6:.3f}M',
      'compile_s': f'{compile_s:.2f}',
      'step_ms': statistics.median(timings) * 1e3,
      'step_ms_spread': f'{min(timings) * 1e3:.2f}-{max(timings) * 1e3:.2f}',
      'temp_mib': f'{memory.temp_size_in_bytes / 2**20:.1f}' if memory else 'n/a',
      'peak_mib': (
          f'{stats["peak_bytes_in_use"] / 2**20:.1f}' if 'peak_bytes_in_use' in stats else 'n/a'
      ),
  }


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  on_cpu = jax.default_backend() == 'cpu'
  parser.add_argument('--lengths', nargs='+', type=int, default=[64, 256, 1024, 4096])
  parser.add_argument('--models', nargs='+', choices=['climp', 'vit'], default=['climp', 'vit'])
  parser.add_argument('--width', type=int, default=64 if on_cpu else 768)
  parser.add_argument('--layers', type=int, default=2 if on_cpu else 12)
  parser.add_argument('--patch', type=int, default=8 if on_cpu else 16)
  parser.add_argument('--batch', type=int, default=1 if on_cpu else 32)
  parser.add_argument(
      '--dtype', default='float32' if on_cpu else 'bfloat16', choices=['float32', 'bfloat16']
  )
  parser.add_argument('--impl', default='auto', choices=SCAN_IMPLS, help='CLIMP scan kernel')
  parser.add_argument('--chunk', type=int, default=64, help='CLIMP scan chunk length')
  parser.add_argument('--state', type=int, default=16, help='CLIMP state size N')
  parser.add_argument('--steps', type=int, default=1, help='steps per timing')
  parser.add_argument('--repeats', type=int, default=3, help='timings; the median is printed')
  args = parser.parse_args()
  for kind in args.models:
    previous = None
    for length in args.lengths:
      row = measure(kind, length, args)
      step_ms = row['step_ms']
      row['x_prev'] = f'{step_ms / previous:.1f}' if previous else '-'
      row['step_ms'] = f'{step_ms:.2f}'
      previous = step_ms
      print(' '.join(f'{key}={value}' for key, value in row.items()), flush=True)


if __name__ == '__main__':
  main()
