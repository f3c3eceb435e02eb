"""Training throughput on one accelerator: the full train step (loss, gradients, AdamW, clamp).

    B=experiments/benchmarks
    python $B/train_throughput.py                  # CPU: tiny ladder at batch 32, 64, 128
    python $B/train_throughput.py --preset paper   # the five paper models, largest batch
    python $B/train_throughput.py --model ViT-B-16 --batch auto --dtype bfloat16
    python $B/train_throughput.py --model tiny-3 --remat none dots full --scan true
    python $B/train_throughput.py --model tiny-3 --input pipeline --workers 2

One line per configuration (perf_line.FIELDS first): device kind, the peak bf16 FLOP/s used
for MFU (scaling_vlm.flops, by device kind; `--peak-tflops` where the kind is unknown),
model, per-device batch, compute dtype, attention kernel, remat policy, scanned layers,
samples/s, median step time, MFU (training FLOPs per sample, attention and backward
included, x samples/s / peak), and peak memory: the device's own `peak_bytes_in_use` where
it keeps one, else (CPU) XLA's estimate for the compiled step, as `mem_source` says.

Every switch takes several values and every combination is measured, so one command A/Bs
them: `--dtype`, `--attention`, `--remat`, `--scan`, `--flatten` (optim.flatten),
`--xla-flags` (xla.gpu_flags presets, set in the measuring process's XLA_FLAGS before JAX
starts). Each measurement runs in a fresh subprocess (train_measure.py).

`--batch auto` finds the largest batch that fits one device: double from `--batch-start`
until an attempt runs out of memory (RESOURCE_EXHAUSTED), then bisect; each attempt is its
own subprocess. A CPU has no device memory to run out of: there, an attempt fits when XLA's
estimate for the compiled step is under `--cpu-mem-limit-gb`, and only the answer runs.

Inputs are a device-resident random batch, so the step is timed without the input
pipeline. `--input pipeline` then also times the real grain pipeline (the synthetic world,
or `--data-source wds --shards ...`) feeding the same compiled step, and adds its
samples/s, its slowdown against device-resident inputs and the fraction of the step spent
waiting for data.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import batch_search  # noqa: E402
import perf_line  # noqa: E402
from scaling_vlm.train import xla_flags  # noqa: E402  (imports no JAX)

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_LADDER = ['tiny-1', 'tiny-2', 'tiny-3', 'tiny-4', 'tiny-5']
PAPER_MODELS = ['ViT-B-32', 'ViT-B-16', 'ViT-L-14', 'mammut_ViT-B-32', 'mammut_ViT-L-14']
BOOL = {'false': False, 'true': True}


def paper_preset(platform: str) -> dict:
  """The recommended switches for the paper's models on one accelerator. bf16 compute (fp32
  master weights); cuDNN flash attention on GPUs (JAX's default kernel is XLA's); the XLA
  performance flags; the largest batch that fits without remat."""
  return {
      'model': PAPER_MODELS,
      'batch': ['auto'],
      'dtype': ['bfloat16'],
      'attention': ['cudnn' if platform == 'gpu' else 'xla'],
      'remat': ['none'],
      'scan': ['false'],
      'flatten': ['false'],
      'xla_flags': ['performance' if platform == 'gpu' else 'none'],
  }


def device_info(env: dict) -> dict:
  """Asked in a subprocess: a parent holding the GPU would leave its children less memory."""
  code = (
      'import json, jax; d = jax.devices()[0]; print(json.dumps('
      '{"platform": d.platform, "kind": d.device_kind, "count": jax.device_count()}))'
  )
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True)
  if out.returncode:
    sys.exit(f'error: could not start JAX: {out.stderr.strip()[-2000:]}')
  return json.loads(out.stdout.strip().splitlines()[-1])


def child_env(args, preset: str) -> dict:
  env = dict(os.environ)
  env['XLA_FLAGS'] = xla_flags.merged(preset, env.get('XLA_FLAGS', ''))
  if args.mem_fraction:
    env['XLA_PYTHON_CLIENT_MEM_FRACTION'] = str(args.mem_fraction)
  # Search attempts and the final measurement compile the same step: compile it once.
  env.setdefault(
      'JAX_COMPILATION_CACHE_DIR', os.path.join(tempfile.gettempdir(), 'scaling_vlm_bench_cache')
  )
  return env


def run_child(spec: dict, env: dict) -> dict:
  cmd = [sys.executable, os.path.join(HERE, 'train_measure.py'), json.dumps(spec)]
  out = subprocess.run(cmd, env=env, capture_output=True, text=True)
  if out.returncode < 0:  # killed: the kernel's OOM killer, on a host out of memory
    return {'fits': False, 'oom': f'killed by signal {-out.returncode}'}
  if out.returncode:
    lines = out.stderr.strip().splitlines() or ['(no output)']
    return {'error': lines[-1][:500]}
  return json.loads(out.stdout.strip().splitlines()[-1])


def auto_batch(spec: dict, env: dict, args, on_cpu: bool) -> tuple[int | None, str]:
  def fits(batch: int) -> bool:
    result = run_child({**spec, 'batch': batch, 'mode': 'probe'}, env)
    if 'error' in result:
      raise RuntimeError(result['error'])
    print(f'#   batch {batch}: {"fits" if result["fits"] else "does not fit"} {result}', flush=True)
    return result['fits']

  start = args.batch_start or (16 if on_cpu else 64)
  limit = args.max_batch or (1024 if on_cpu else 65536)
  best, attempts = batch_search.largest_batch(
      fits, start=start, limit=limit, bisect_steps=args.bisect_steps, multiple=args.batch_multiple
  )
  return best, f'auto({len(attempts)}_attempts)'


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--preset', choices=['paper'], help='the five paper models, batch auto')
  parser.add_argument('--model', nargs='+')
  parser.add_argument('--batch', nargs='+', help="per-device batch sizes, or 'auto'")
  parser.add_argument('--dtype', nargs='+', choices=['float32', 'bfloat16'])
  parser.add_argument('--attention', nargs='+', choices=['auto', 'xla', 'cudnn'])
  parser.add_argument('--remat', nargs='+', choices=['none', 'full', 'dots'])
  parser.add_argument('--scan', nargs='+', choices=list(BOOL), help='model.scan_layers')
  parser.add_argument('--flatten', nargs='+', choices=list(BOOL), help='optim.flatten')
  parser.add_argument('--xla-flags', nargs='+', choices=list(xla_flags.PRESETS))
  parser.add_argument('--micro-batches', type=int, default=1)
  parser.add_argument('--input', choices=['device', 'pipeline'], default='device')
  parser.add_argument('--data-source', choices=['synthetic', 'wds', 'arrayrecord'])
  parser.add_argument('--shards', help='wds / arrayrecord shards (list, brace pattern, folder)')
  parser.add_argument('--tokenizer', choices=['word', 'clip_bpe'])
  parser.add_argument('--bpe-path')
  parser.add_argument('--workers', type=int, help='grain worker processes (data.num_workers)')
  parser.add_argument('--read-threads', type=int, help='data.read_threads')
  parser.add_argument('--steps', type=int, default=5, help='steps per timing')
  parser.add_argument('--repeats', type=int, default=5, help='timings; the median is printed')
  parser.add_argument('--batch-start', type=int, help='auto: first batch (CPU 16, else 64)')
  parser.add_argument('--max-batch', type=int, help='auto: stop doubling here')
  parser.add_argument('--bisect-steps', type=int, default=2)
  parser.add_argument('--batch-multiple', type=int, default=8)
  parser.add_argument('--cpu-mem-limit-gb', type=float, default=2.0)
  parser.add_argument('--mem-fraction', type=float, help='XLA_PYTHON_CLIENT_MEM_FRACTION')
  parser.add_argument('--peak-tflops', type=float, help='for a device kind flops.py lacks')
  args = parser.parse_args()

  info = device_info(child_env(args, 'none'))
  on_cpu = info['platform'] == 'cpu'
  defaults = {
      'model': TINY_LADDER if on_cpu else ['ViT-B-32'],
      'batch': ['32', '64', '128'] if on_cpu else ['auto'],
      'dtype': ['float32' if on_cpu else 'bfloat16'],
      'attention': ['auto'],
      'remat': ['none'],
      'scan': ['false'],
      'flatten': ['false'],
      'xla_flags': ['none'],
  }
  if args.preset == 'paper':
    defaults.update(paper_preset(info['platform']))
  axes = {key: getattr(args, key) or default for key, default in defaults.items()}
  for batch in axes['batch']:
    if batch != 'auto' and not batch.isdigit():
      sys.exit(f"error: --batch {batch!r} is not allowed; give whole numbers or 'auto'.")
  kind, flags = info['kind'].replace(' ', '_'), os.environ.get('XLA_FLAGS', '')
  print(
      f"# device={kind} platform={info['platform']} devices_visible={info['count']} (one is "
      f"used) XLA_FLAGS={flags!r} (plus each line's xla_flags preset)",
      flush=True,
  )
  for values in itertools.product(*axes.values()):
    point = dict(zip(axes, values))
    spec = {
        **point,
        'scan': BOOL[point['scan']],
        'flatten': BOOL[point['flatten']],
        'micro_batches': args.micro_batches,
        'input': args.input,
        'source': args.data_source,
        'shards': args.shards,
        'tokenizer': args.tokenizer,
        'bpe_path': args.bpe_path,
        'num_workers': args.workers,
        'read_threads': args.read_threads,
        'steps': args.steps,
        'repeats': args.repeats,
        'cpu_mem_limit_gb': args.cpu_mem_limit_gb,
        'peak_flops': args.peak_tflops * 1e12 if args.peak_tflops else None,
    }
    env = child_env(args, point['xla_flags'])
    label = ' '.join(f'{k}={v}' for k, v in point.items())
    search = 'fixed'
    if point['batch'] == 'auto':
      print(f'# searching the largest batch: {label}', flush=True)
      try:
        best, search = auto_batch(spec, env, args, on_cpu)
      except RuntimeError as error:
        print(f'{label} error={str(error)!r}', flush=True)
        continue
      if best is None:
        print(f'{label} error=the_first_batch_does_not_fit_(lower_--batch-start)', flush=True)
        continue
      spec['batch'] = best
    else:
      spec['batch'] = int(point['batch'])
    row = run_child({**spec, 'mode': 'measure'}, env)
    if 'samples_per_s' not in row:
      problem = row.get('error') or row.get('oom') or row
      print(f'{label} measured_batch={spec["batch"]} error={problem!r}', flush=True)
      continue
    print(perf_line.format_line({**row, 'batch_search': search}), flush=True)


if __name__ == '__main__':
  main()
