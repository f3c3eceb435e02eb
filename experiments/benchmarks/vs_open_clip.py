"""Our train step against open_clip's, same model, same batch, same device, one invocation.

    python experiments/benchmarks/vs_open_clip.py --model ViT-B-32 ViT-L-14 --batch 256
    python experiments/benchmarks/vs_open_clip.py --model ViT-B-32 --batch auto
    python experiments/benchmarks/vs_open_clip.py --model tiny-1 --batch 8 --steps 2 --repeats 2

For each model: train_throughput.py measures ours (with `--batch auto`, at the largest batch
that fits; on GPUs with the paper preset's switches: bf16, cuDNN attention, the XLA
performance flags), then open_clip_step.py runs open_clip's step at that same batch, one
after the other in separate processes, so each has the device to itself. Both lines are
printed, then `ratio=` ours / open_clip in samples/s. `--torch-python` names the
interpreter that has PyTorch and open_clip, where that is another environment.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import perf_line  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def lines_of(cmd: list[str]) -> tuple[list[str], str]:
  """The benchmark lines a script printed (comments and progress left out), and its errors."""
  out = subprocess.run(cmd, capture_output=True, text=True)
  lines = [line for line in out.stdout.splitlines() if line.startswith('device=')]
  problems = [line for line in out.stdout.splitlines() if 'error=' in line or 'skipped=' in line]
  if out.returncode:
    problems.append(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else 'failed')
  return lines, '; '.join(problems)


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--model', nargs='+', default=['ViT-B-32'])
  parser.add_argument('--batch', default='auto', help="per-device batch, or 'auto'")
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--dtype', choices=['float32', 'bfloat16'], help='ours; default: bf16')
  parser.add_argument('--torch-python', default=sys.executable)
  parser.add_argument('--peak-tflops', type=float)
  # JAX preallocates 75% of a GPU by default; PyTorch allocates as it goes.
  parser.add_argument('--mem-fraction', type=float, default=0.9, help='ours, on GPUs')
  args = parser.parse_args()

  timing = ['--steps', str(args.steps), '--repeats', str(args.repeats)]
  timing += ['--peak-tflops', str(args.peak_tflops)] if args.peak_tflops else []
  for model in args.model:
    if model.startswith(('mammut_', 'climp_')):  # open_clip 3.3 has neither
      print(f'model={model} skipped=not_in_open_clip', flush=True)
      continue
    # The paper preset's switches, narrowed to this model and batch.
    ours_cmd = [sys.executable, os.path.join(HERE, 'train_throughput.py'), '--preset', 'paper']
    ours_cmd += ['--model', model, '--batch', args.batch, *timing]
    ours_cmd += ['--dtype', args.dtype] if args.dtype else []
    ours_cmd += ['--mem-fraction', str(args.mem_fraction)]
    ours, problem = lines_of(ours_cmd)
    if not ours:
      print(f'model={model} error=ours:{problem!r}', flush=True)
      continue
    print(f'ours      {ours[0]}', flush=True)
    mine = perf_line.parse_line(ours[0])
    theirs_cmd = [args.torch_python, os.path.join(HERE, 'open_clip_step.py'), '--model', model]
    theirs_cmd += ['--batch', mine['batch'], *timing]
    theirs_cmd += ['--precision', 'fp32' if mine['dtype'] == 'float32' else 'amp_bf16']
    theirs, problem = lines_of(theirs_cmd)
    if not theirs:
      print(f'model={model} batch={mine["batch"]} error=open_clip:{problem!r}', flush=True)
      continue
    print(f'open_clip {theirs[0]}', flush=True)
    other = perf_line.parse_line(theirs[0])
    ratio = float(mine['samples_per_s']) / float(other['samples_per_s'])
    print(f'model={model} batch={mine["batch"]} ratio={ratio:.3f} (ours/open_clip samples/s)')


if __name__ == '__main__':
  main()
