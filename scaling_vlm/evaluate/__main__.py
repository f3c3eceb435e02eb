"""`python -m scaling_vlm.evaluate --workdir DIR [DIR ...] [--tasks ...]`: every milestone
checkpoint of each run into `DIR/results.csv` (see `checkpoints` and `tasks`)."""

from __future__ import annotations

import argparse
import logging
import sys

from scaling_vlm.evaluate import mesh, milestones, tasks


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m scaling_vlm.evaluate', description=__doc__)
  parser.add_argument('--workdir', nargs='+', required=True, help='run directories')
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
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
  summary = milestones.Summary()
  for workdir in args.workdir:
    try:
      milestones.evaluate_run(
          workdir,
          args.tasks,
          synthetic_size=args.synthetic_size,
          batch_size=args.batch_size,
          dataset=args.pretrain_dataset,
          summary=summary,
          mesh=args.mesh,
      )
    except (OSError, ValueError) as error:  # not a run, or a bad task spec: the next run
      summary.skip(workdir, None, 'run', error)
  print('\n'.join(summary.lines()))
  return 1 if summary.skipped else 0


if __name__ == '__main__':
  sys.exit(main())
