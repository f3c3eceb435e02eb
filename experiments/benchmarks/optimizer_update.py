"""The optimiser update alone (clip, AdamW, apply), per-parameter vs flattened (`optim.flatten`).

    python experiments/benchmarks/optimizer_update.py                       # tiny-5, ViT-B-32
    python experiments/benchmarks/optimizer_update.py --model ViT-L-14 --scan false true

In a whole train step the update is a few percent of the time, below the noise of a shared
machine; timed alone, its cost per variant is visible. One line per (model, scan, flatten):
parameter leaves, parameters, median update time over `--repeats` timings of `--steps`
donated updates on one device.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from scaling_vlm import models
from scaling_vlm.train import step as step_lib


def measure(name: str, scan: bool, flatten: bool, args) -> dict:
  arch = models.get_config(name, scan_layers=scan)
  abstract = nnx.state(nnx.eval_shape(lambda: models.build(arch)), nnx.Param)
  params = jax.tree.map(lambda x: jnp.full(x.shape, 0.01, x.dtype), abstract)
  grads = jax.tree.map(lambda x: jnp.full(x.shape, 1e-3, x.dtype), abstract)
  opt = step_lib.adamw(b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.2, grad_clip=1.0, flatten=flatten)

  def update(params, opt_state, grads):  # as the train step does it, at a 1e-3 rate
    direction, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, jax.tree.map(lambda d: -1e-3 * d, direction)), opt_state

  fn = jax.jit(update, donate_argnums=(0, 1))
  state = (params, opt.init(params))
  state = fn(*state, grads)  # compile and warm up
  jax.block_until_ready(state)
  timings = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    for _ in range(args.steps):
      state = fn(*state, grads)
    jax.block_until_ready(state)
    timings.append((time.perf_counter() - start) / args.steps)
  return {
      'device': jax.devices()[0].device_kind.replace(' ', '_'),
      'model': name,
      'scan': scan,
      'flatten': flatten,
      'leaves': len(jax.tree.leaves(params)),
      'params_m': round(sum(x.size for x in jax.tree.leaves(params)) / 1e6, 2),
      'update_ms': round(statistics.median(timings) * 1e3, 3),
      'update_ms_spread': f'{min(timings) * 1e3:.3f}-{max(timings) * 1e3:.3f}',
  }


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--model', nargs='+', default=['tiny-5', 'ViT-B-32'])
  parser.add_argument('--scan', nargs='+', choices=['false', 'true'], default=['false'])
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--repeats', type=int, default=7)
  args = parser.parse_args()
  for name in args.model:
    for scan in args.scan:
      for flatten in (False, True):
        row = measure(name, scan == 'true', flatten, args)
        print(' '.join(f'{k}={v}' for k, v in row.items()), flush=True)


if __name__ == '__main__':
  main()
