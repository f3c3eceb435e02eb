"""CLIMP against CLIP at ViT-B-16, L-14 and H-14, at 224 px and where a linear scan should pay
off (448 and 896 px): every figure as a CLIMP / CLIP ratio, beside the CLIMP note's claims.

    python experiments/benchmarks/climp_vs_vit.py                        # B, L, H x 224, 448, 896
    python experiments/benchmarks/climp_vs_vit.py --sizes B L --px 224 448 --repeats 5

Counted (whole model, from the zoo: `scaling_vlm.flops`): parameters, forward GFLOPs in the
paper's convention (linear layers and CLIMP's scan; no attention products), training FLOPs
(forward + backward, attention products counted), and the training FLOPs of the vision blocks
alone (the part the measurement below runs).

Measured (one vision tower, this machine): the median over `--repeats` timings of a jitted
forward + backward (the gradient of the embeddings' sum with respect to every tower parameter)
at batch `--batch`, and its memory per sample: on GPUs and TPUs the device's peak bytes in use,
elsewhere the temporary memory XLA plans for the step (`memory_analysis()`: activations and
workspace, not parameters or inputs). The towers keep their full width and resolution but only
`--layers` blocks (default 1 on a CPU): both are stacks of identical blocks, so the ratio of a
few blocks is the ratio of the tower, and full depth at 896 px does not fit a CPU's time: one
ViT-H-14 block at 896 px (4096 patches) takes 9 s a step on two cores, the tower 5 minutes. The
default run takes about 5 minutes there (measurements: scaling_vlm/models/CLIMP_NOTES.md).

One line per measurement (`kind=count`, `kind=measure`: its timings and the 1-minute load
average before and after), one `kind=ratio` line per (size, px), then a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_vlm import flops, models
from scaling_vlm.models.climp import MambaVisionTower
from scaling_vlm.models.vit import VisionTower

import device_batch  # beside this file

SIZES = {'B': 'ViT-B-16', 'L': 'ViT-L-14', 'H': 'ViT-H-14'}
# The CLIMP note's claims for CLIMP against CLIP of the same size (issue #20): FLOPs, training
# throughput and memory as CLIMP / CLIP ratios, and zero-shot accuracy as CLIMP's edge in points.
CLAIMS = {
    'B': {'flops': 0.81, 'throughput': 1.21, 'memory': 0.83, 'accuracy': '+3.5'},
    'L': {'flops': 0.74, 'throughput': 1.37, 'memory': 0.77, 'accuracy': 'between'},
    'H': {'flops': 0.70, 'throughput': 1.44, 'memory': 0.74, 'accuracy': '+1.2'},
}


def config(name: str, px: int, **overrides):
  return models.get_config(name, **{'vision.image_size': px, **overrides})


def count(name: str, px: int) -> dict:
  """The zoo's figures for the whole model at `px`, and the vision blocks' training FLOPs."""
  cfg = config(name, px)
  depth = lambda n: flops.train_flops(cfg.replace(**{'vision.layers': n}))
  return {
      'params': models.param_count(cfg),
      'gflops': flops.forward_flops(cfg) / 1e9,
      'train_gflops': flops.train_flops(cfg) / 1e9,
      'vision_blocks_train_gflops': (depth(2) - depth(1)) * cfg.vision.layers / 1e9,
  }


def measure(name: str, px: int, args) -> dict:
  """One vision tower of `args.layers` blocks: forward + backward time and memory per sample."""
  cfg = config(name, px, **{'vision.layers': args.layers, 'dtype': args.dtype})
  tower = (MambaVisionTower if cfg.arch == 'climp' else VisionTower)(cfg, nnx.Rngs(params=0))
  graphdef, params = nnx.split(tower)
  images = jax.random.normal(jax.random.key(0), (args.batch, px, px, 3))

  @jax.jit
  def step(params, images):
    loss = lambda p: jnp.sum(nnx.merge(graphdef, p)(images)[0].astype(jnp.float32))
    return jax.grad(loss)(params)

  load_before = os.getloadavg()[0]
  start = time.perf_counter()
  compiled = step.lower(params, images).compile()
  compile_s = time.perf_counter() - start
  timings = device_batch.time_calls(compiled, (params, images), 1, args.repeats)
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    memory, source = stats['peak_bytes_in_use'], 'device_peak'
  else:
    analysis = compiled.memory_analysis()
    memory, source = analysis.temp_size_in_bytes, 'xla_temp'
  return {
      'layers': args.layers,
      'batch': args.batch,
      'dtype': args.dtype,
      'device': jax.devices()[0].device_kind.replace(' ', '_'),
      'compile_s': round(compile_s, 1),
      'step_ms': statistics.median(timings) * 1e3,
      'step_ms_runs': ','.join(f'{t * 1e3:.1f}' for t in timings),
      'mib_per_sample': memory / args.batch / 2**20,
      'memory': source,
      'load1': f'{load_before:.2f}->{os.getloadavg()[0]:.2f}',
  }


def line(**fields) -> str:
  fmt = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)
  return ' '.join(f'{key}={fmt(value)}' for key, value in fields.items())


def table(rows: list[dict]) -> str:
  header = (
      '| size | px | params | GFLOPs (paper) | train FLOPs | vision blocks train FLOPs '
      '| measured throughput | measured memory/sample | claimed FLOPs | claimed throughput '
      '| claimed memory | claimed accuracy edge |'
  )
  lines = [header, '|' + '---|' * (header.count('|') - 1)]
  for r in rows:
    # The note's claims are for its models at 224 px: beside those rows only.
    c = CLAIMS[r['size']] if r['px'] == 224 else None
    claimed = lambda key, fmt='{:.2f}': fmt.format(c[key]) if c else '-'
    measured = lambda key: f'{r[key]:.2f}' if key in r else 'not run'
    lines.append(
        f"| {r['size']} | {r['px']} | {r['params']:.3f} | {r['gflops']:.2f} "
        f"| {r['train_gflops']:.2f} | {r['vision_blocks_train_gflops']:.2f} "
        f"| {measured('throughput')} | {measured('memory')} | {claimed('flops')} "
        f"| {claimed('throughput')} | {claimed('memory')} | {claimed('accuracy', '{}')} |"
    )
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  on_cpu = jax.default_backend() == 'cpu'
  parser.add_argument('--sizes', nargs='+', choices=list(SIZES), default=list(SIZES))
  parser.add_argument('--px', nargs='+', type=int, default=[224, 448, 896])
  parser.add_argument('--layers', type=int, default=1 if on_cpu else 4, help='blocks measured')
  parser.add_argument('--batch', type=int, default=1 if on_cpu else 8)
  parser.add_argument(
      '--dtype', default='float32' if on_cpu else 'bfloat16', choices=['float32', 'bfloat16']
  )
  parser.add_argument('--repeats', type=int, default=3, help='timings; the median is used')
  parser.add_argument('--count-only', action='store_true', help='the zoo figures, no timing')
  args = parser.parse_args()
  print(line(kind='start', uptime_load=' '.join(f'{v:.2f}' for v in os.getloadavg())), flush=True)
  rows = []
  for size in args.sizes:
    for px in args.px:
      names = {'clip': SIZES[size], 'climp': f'climp_{SIZES[size]}'}
      got = {}
      for arch, name in names.items():
        got[arch] = count(name, px)
        print(line(kind='count', size=size, px=px, model=name, **got[arch]), flush=True)
        if not args.count_only:
          measured = measure(name, px, args)
          print(line(kind='measure', size=size, px=px, model=name, **measured), flush=True)
          got[arch].update(measured)
      ratio = {
          key: got['climp'][key] / got['clip'][key]
          for key in ('params', 'gflops', 'train_gflops', 'vision_blocks_train_gflops')
      }
      if not args.count_only:
        ratio['throughput'] = got['clip']['step_ms'] / got['climp']['step_ms']
        ratio['memory'] = got['climp']['mib_per_sample'] / got['clip']['mib_per_sample']
      print(line(kind='ratio', size=size, px=px, **ratio), flush=True)
      rows.append({'size': size, 'px': px, **ratio})
  print(line(kind='end', uptime_load=' '.join(f'{v:.2f}' for v in os.getloadavg())), flush=True)
  print('\nCLIMP / CLIP (throughput: samples/s; the rest: amounts)\n' + table(rows))


if __name__ == '__main__':
  main()
