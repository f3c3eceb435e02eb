"""Import an open_clip checkpoint as a run, or export a run as an open_clip checkpoint.

    python -m scaling_vlm.convert import --model mammut_ViT-L-14 --checkpoint model.safetensors \
        --samples-seen 12.8e9 --workdir runs/openmammut-l14
    python -m scaling_vlm.convert import --model ViT-B-32 --checkpoint logs/run/epoch_8.pt \
        --samples-per-epoch 128M --global-batch 4096 --schedule const --workdir runs/b32-e8
    python -m scaling_vlm.convert export --workdir runs/b32 [--step N] --out b32.safetensors

An imported run is evaluated (`python -m scaling_vlm.evaluate --workdir DIR`), exported, or
started from (`--config.init.checkpoint=DIR`); it has no optimiser state to resume. The export
loads in `open_clip.create_model(name, pretrained=path)` (CLIP) or the MaMMUT fork's.
"""

from __future__ import annotations

import argparse
import sys

from scaling_vlm.train import schedules
from scaling_vlm.train.config import parse_count


def _count(key: str):
  return lambda text: parse_count(text, key)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m scaling_vlm.convert',
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  commands = parser.add_subparsers(dest='command', required=True)
  load = commands.add_parser('import', help='an open_clip checkpoint -> a workdir')
  load.add_argument('--model', required=True, help='zoo name (CLIP or mammut_*)')
  load.add_argument('--checkpoint', required=True, help='.safetensors, or a torch .pt/.bin')
  load.add_argument('--workdir', required=True)
  load.add_argument('--samples-seen', type=_count('--samples-seen'), help='e.g. 12.8e9')
  load.add_argument(
      '--samples-per-epoch',
      type=_count('--samples-per-epoch'),
      help="with a training checkpoint's epoch, gives the samples seen",
  )
  load.add_argument('--global-batch', type=int, help="the run's (default: the preset's)")
  load.add_argument(
      '--schedule',
      default='cosine',
      choices=[s for s in schedules.SCHEDULES if s != 'cooldown'],
      help='the run it comes from (the results table keeps it): cosine (default) or const',
  )
  load.add_argument(
      '--total-samples',
      type=_count('--total-samples'),
      help="the run's total (default: the samples seen: the end of its run)",
  )
  save = commands.add_parser('export', help='a workdir -> an open_clip .safetensors')
  save.add_argument('--workdir', required=True)
  save.add_argument('--step', type=int, help='default: the latest checkpoint')
  save.add_argument('--out', required=True, help='a .safetensors path')
  args = parser.parse_args(argv)

  from scaling_vlm.convert import runs  # pylint: disable=import-outside-toplevel
  from scaling_vlm.train import checkpoints  # pylint: disable=import-outside-toplevel

  try:
    with checkpoints.absl_errors_only():
      return _command(args, runs)
  except (ValueError, FileNotFoundError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 2


def _command(args, runs) -> int:
  if args.command == 'import':
    run = runs.import_checkpoint(
        args.checkpoint,
        args.model,
        args.workdir,
        samples=args.samples_seen,
        samples_per_epoch=args.samples_per_epoch,
        global_batch=args.global_batch,
        schedule=args.schedule,
        total_samples=args.total_samples,
    )
    seen = run.plan.milestone_steps[0] * run.plan.global_batch
    print(
        f'{args.workdir}: {args.model} at {seen:,} samples seen '
        f'({run.compute_gflops(seen):.4g} GFLOPs); evaluate it with '
        f'python -m scaling_vlm.evaluate --workdir {args.workdir}'
    )
    return 0
  if not args.out.endswith('.safetensors'):
    raise ValueError(f'--out {args.out!r}: write a .safetensors file.')
  step, tensors = runs.export_run(args.workdir, args.out, args.step)
  print(f'{args.out}: {len(tensors)} tensors of {args.workdir} at step {step}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
