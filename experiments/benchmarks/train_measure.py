"""One training-throughput measurement on one device, run as a subprocess by
train_throughput.py: `python train_measure.py '<json spec>'` prints one JSON object.

A fresh process per measurement keeps every number its own (peak device memory, host RSS)
and lets an out-of-memory attempt fail without poisoning the caller; its XLA_FLAGS come from
the parent's environment, set before JAX starts here.

Modes: `probe` compiles and, on a device that reports its memory (GPU, TPU), runs two steps,
to learn whether the batch fits; on a CPU, "fits" means the compiled step's XLA memory
estimate is under `cpu_mem_limit_gb`, and nothing runs. `measure` times the step.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time

import jax
import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # device_batch, perf_line
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import device_batch  # noqa: E402
import perf_line  # noqa: E402
from configs import presets  # noqa: E402
from scaling_vlm import flops, sharding  # noqa: E402
from scaling_vlm.train import config as config_lib  # noqa: E402
from scaling_vlm.train import trainer  # noqa: E402

LR = np.float32(1e-3)  # the step's learning rate: a constant, as it does not change the cost

OOM_MARKERS = ('RESOURCE_EXHAUSTED', 'Out of memory', 'out of memory', 'OOM')


def run_config(spec: dict):
  """The run config this measurement stands for, checked as the trainer checks it."""
  config = presets.for_model(spec['model'])
  config.model.dtype = spec['dtype']
  config.model.attention_impl = spec['attention']
  config.model.remat = spec['remat']
  config.model.scan_layers = spec['scan']
  config.optim.flatten = spec['flatten']
  config.xla.gpu_flags = spec['xla_flags']
  config.train.global_batch = spec['batch']
  config.train.micro_batches = spec['micro_batches']
  # A few hundred steps' worth of schedule: the step's cost does not depend on the run's length.
  config.train.samples, config.train.warmup = str(spec['batch'] * 100), '0'
  for key in ('source', 'shards', 'tokenizer', 'bpe_path', 'num_workers', 'read_threads'):
    if spec.get(key) is not None:
      config.data[key] = spec[key]
  config_lib.validate(config)
  config_lib.check_devices(config, jax.devices()[0].platform)
  return config


def memory(compiled) -> tuple[float, str]:
  """Peak memory in GB and where it came from: the device's own peak counter where it keeps
  one (GPU, TPU); otherwise XLA's estimate for the compiled step (arguments + outputs −
  donated aliases + temporaries)."""
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return stats['peak_bytes_in_use'] / 1e9, 'device_peak'
  m = compiled.memory_analysis()
  total = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
  return (total + m.temp_size_in_bytes) / 1e9, 'xla_estimate'


def time_steps(compiled, state, next_batch, steps: int, repeats: int):
  """Median seconds per step over `repeats` timings of `steps` steps, their spread, the
  median fraction of the time spent waiting for `next_batch`, and the final state."""
  timings, waits = [], []
  for _ in range(repeats):
    wait = 0.0
    start = time.perf_counter()
    for _ in range(steps):
      t0 = time.perf_counter()
      batch = next_batch()
      wait += time.perf_counter() - t0
      state, metrics = compiled(state, batch, LR)
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - start
    timings.append(elapsed / steps)
    waits.append(wait / elapsed)
  return statistics.median(timings), timings, statistics.median(waits), state


def measure(spec: dict) -> dict:
  config = run_config(spec)
  device = jax.devices()[0]
  mesh = sharding.make_mesh(data=1, devices=[device])  # one accelerator
  # Built as the trainer builds a run (optimiser, loss, state, pipeline), without a workdir.
  parts = trainer.setup(config, mesh)
  arch, state, train_step = parts.run.model, parts.state, parts.train_step
  fixed = device_batch.random_batch(arch, spec['batch'], mesh)
  with jax.set_mesh(mesh):
    start = time.perf_counter()
    compiled = train_step.lower(state, fixed, LR).compile()
    compile_s = time.perf_counter() - start
    on_cpu = device.platform == 'cpu'
    if spec['mode'] == 'probe' and on_cpu:
      gb, _ = memory(compiled)
      return {'fits': gb <= spec['cpu_mem_limit_gb'], 'mem_gb': round(gb, 3)}
    for _ in range(2):  # warm-up; in probe mode, the test of whether it fits
      state, metrics = compiled(state, fixed, LR)
    jax.block_until_ready(metrics)
    if spec['mode'] == 'probe':
      return {'fits': True, 'mem_gb': round(memory(compiled)[0], 3)}
    steps, repeats = spec['steps'], spec['repeats']
    step_s, timings, _, state = time_steps(compiled, state, lambda: fixed, steps, repeats)
    peak_gb, mem_source = memory(compiled)
    pipe = {}
    if spec['input'] == 'pipeline':
      # The real grain pipeline (config.data), as the trainer feeds it, placed exactly as the
      # compiled step expects.
      shardings = jax.tree.map(lambda x: x.sharding, fixed)
      next_batch = lambda: jax.device_put(next(parts.batches), shardings)
      for _ in range(2):  # let the workers and the prefetch buffer start
        state, metrics = compiled(state, next_batch(), LR)
      pipe_s, _, wait, state = time_steps(compiled, state, next_batch, steps, repeats)
      pipe = {
          'pipe_samples_per_s': round(spec['batch'] / pipe_s, 2),
          'pipe_step_ms': round(pipe_s * 1e3, 2),
          'pipe_slowdown': round(pipe_s / step_s, 3),
          'data_wait': round(wait, 3),
      }
  peak = spec.get('peak_flops') or flops.peak_flops(device)
  samples_per_s = spec['batch'] / step_s
  return {
      'device': device.device_kind,
      'peak_tflops': round(peak / 1e12, 1) if peak else 'n/a',
      'model': spec['model'],
      'batch': spec['batch'],
      'dtype': spec['dtype'],
      'attention': spec['attention'],
      'remat': spec['remat'],
      'scan': spec['scan'],
      'samples_per_s': round(samples_per_s, 2),
      'step_ms': round(step_s * 1e3, 2),
      'mfu': perf_line.mfu(flops.train_flops(arch), samples_per_s, peak),
      'peak_mem_gb': round(peak_gb, 3),
      'mem_source': mem_source,
      'flatten': spec['flatten'],
      'xla_flags': spec['xla_flags'],
      'micro_batches': spec['micro_batches'],
      'input': spec['input'],
      **pipe,
      'compile_s': round(compile_s, 1),
      'step_ms_spread': f'{min(timings) * 1e3:.1f}-{max(timings) * 1e3:.1f}',
      'host_rss_gb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
  }


def main() -> None:
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags
  spec = json.loads(sys.argv[1])
  try:
    row = measure(spec)
  except Exception as error:  # an OOM is an answer, not a crash
    message = f'{type(error).__name__}: {error}'
    if any(marker in message for marker in OOM_MARKERS):
      row = {'fits': False, 'oom': message.splitlines()[0][:300]}
    else:
      raise
  print(json.dumps(row), flush=True)


if __name__ == '__main__':
  main()
