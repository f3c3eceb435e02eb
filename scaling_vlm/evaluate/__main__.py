"""`python -m scaling_vlm.evaluate --workdir DIR [DIR ...] [--tasks ...]`: every milestone
checkpoint of each run into `DIR/results.csv` and its TensorBoard (see `milestones` and
`tasks`). `--checkpoint PATH [--model NAME]`: one checkpoint (a run's step folder, or an
open_clip .safetensors/.pt/.npz file), its metrics printed (see `checkpoint`).

Progress goes to stdout: a bar on a terminal, a line per checkpoint and task elsewhere, each
with an ETA.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from scaling_vlm.evaluate import mesh, progress, tasks


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog='python -m scaling_vlm.evaluate', description=__doc__)
  what = parser.add_mutually_exclusive_group(required=True)
  what.add_argument('--workdir', nargs='+', help='run directories: every milestone checkpoint')
  what.add_argument(
      '--checkpoint',
      help=(
          'one checkpoint: a step folder of a run (WORKDIR/checkpoints/STEP), or an open_clip'
          ' parameters file (.safetensors, .pt/.bin with torch installed, .npz)'
      ),
  )
  parser.add_argument(
      '--model', help="zoo name of a --checkpoint file (a run's step folder names its own)"
  )
  parser.add_argument(
      '--bpe_path', help='CLIP BPE merges file for a --checkpoint of an open_clip model'
  )
  parser.add_argument('--out', help='with --checkpoint: also write its metrics to this CSV')
  parser.add_argument(
      '--tasks',
      nargs='+',
      default=list(tasks.DEFAULT_TASKS),
      help=(
          'synthetic | synthetic/<task> | zeroshot:NAME=FOLDER | retrieval:NAME=FOLDER |'
          ' tfds:DATASET[/SPLIT][=FOLDER] (e.g. tfds:imagenet2012, tfds:coco_captions)'
      ),
  )
  parser.add_argument('--synthetic_size', type=int, default=1000, help='images per synthetic set')
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument(
      '--pretrain_dataset', help="the table's pretrain_dataset (default: from the run's config)"
  )
  parser.add_argument(
      '--mesh',
      default=mesh.DEFAULT,
      help=(
          "mesh over this host's devices: data=-1 (default: parameters replicated), fsdp=N"
          ' (parameters split N ways, for models too big for one device), data=2,fsdp=4, or'
          " 'run' (the sizes the run trained with)"
      ),
  )
  return parser


def _check(args) -> None:
  """User input that cannot work, found before any model or data is touched: ValueError."""
  if args.workdir:
    for flag, why in (
        ('model', "a run's config.json names its model"),
        ('bpe_path', "a run's config.json names its tokenizer"),
        ('out', "a run's rows go to WORKDIR/results.csv"),
    ):
      if getattr(args, flag):
        raise ValueError(f'--{flag} goes with --checkpoint, not --workdir: {why}')
  elif args.pretrain_dataset:
    raise ValueError('--pretrain_dataset goes with --workdir: a --checkpoint writes no table')
  for flag in ('synthetic_size', 'batch_size'):
    if getattr(args, flag) < 1:
      raise ValueError(f'--{flag} {getattr(args, flag)}: must be at least 1')
  if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
    raise ValueError(f'--out {args.out}: its folder does not exist')
  mesh.parse(args.mesh, {})
  tasks.make_tasks(args.tasks, 224, 1, captions=True)  # the specs' syntax: nothing is loaded


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  try:
    _check(args)
  except ValueError as error:
    return _error(None, error)
  logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
  report = progress.Progress(sys.stdout)
  from scaling_vlm.train import checkpoints  # pylint: disable=import-outside-toplevel

  try:
    with checkpoints.absl_errors_only():
      if args.checkpoint:
        return _one_checkpoint(args, report)
      return _runs(args, report)
  finally:
    report.close()


def _runs(args, report) -> int:
  # Orbax and the models load only here, once the command line is known to be good.
  from scaling_vlm.evaluate import milestones  # pylint: disable=import-outside-toplevel

  summary = milestones.evaluate_runs(
      args.workdir,
      args.tasks,
      synthetic_size=args.synthetic_size,
      batch_size=args.batch_size,
      dataset=args.pretrain_dataset,
      mesh=args.mesh,
      progress=report,
  )
  report.close()
  print('\n'.join(summary.lines()))
  return 1 if summary.skipped else 0


def _one_checkpoint(args, report) -> int:
  from scaling_vlm.evaluate import checkpoint  # pylint: disable=import-outside-toplevel

  try:
    found = checkpoint.resolve(args.checkpoint, args.model, args.bpe_path)
  except ValueError as error:  # no checkpoint there, or no model to read it as
    return _error(report, error)
  try:
    result = checkpoint.evaluate(
        found,
        args.tasks,
        synthetic_size=args.synthetic_size,
        batch_size=args.batch_size,
        mesh=args.mesh,
        progress=report,
    )
  except checkpoint.OtherModel as error:
    return _error(report, error)
  report.close()
  print(checkpoint.table(found, result))
  if args.out:
    checkpoint.write_csv(args.out, found, result)
  return 1 if result.skipped else 0


def _error(report, error: BaseException) -> int:
  if report is not None:
    report.close()
  print(f'error: {error}', file=sys.stderr)
  return 2


if __name__ == '__main__':
  sys.exit(main())
