"""Does the synthetic world behave like real data at small scale? Trains a ladder of tiny CLIPs
with a constant LR and evaluates every milestone on the world's zero-shot tasks.

    python experiments/synthetic_learnability.py --out runs/learnability \
        [--models tiny-1 tiny-2 tiny-3 tiny-4] [--samples 64k]

A learnable, non-trivial world shows accuracy rising with both samples seen and model size,
well below 100% (shape is the hard attribute: small, rotated, cluttered). Prints one line per
(model, milestone); rerunning resumes the runs and re-evaluates.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from configs import presets
from scaling_vlm import flops, models
from scaling_vlm.data import synthetic, sources
from scaling_vlm.evaluate import zero_shot
from scaling_vlm.train import checkpoints, trainer


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--out', required=True)
  parser.add_argument('--models', nargs='+', default=['tiny-1', 'tiny-2', 'tiny-3', 'tiny-4'])
  parser.add_argument('--samples', default='64k')
  parser.add_argument('--eval-size', type=int, default=1000, help='images per zero-shot task')
  args = parser.parse_args()
  logging.getLogger('scaling_vlm').setLevel(logging.WARNING)

  tasks = synthetic.zero_shot_tasks(size=args.eval_size)
  for name in args.models:
    config = presets.make('clip', name)
    config.train.samples = args.samples
    config.optim.schedule = 'const'
    config.checkpoint.milestones = 'geometric:3'
    config.log.tensorboard = False
    workdir = os.path.join(args.out, name)
    start = time.perf_counter()
    trainer.train(config, workdir)
    train_s = time.perf_counter() - start
    arch = trainer.model_config(config)
    tokenizer = sources.make_tokenizer(config.data, arch.text)
    ckpts = checkpoints.Checkpoints(os.path.join(workdir, 'checkpoints'), [])
    params = models.count_params(models.abstract(arch))
    for step in sorted(ckpts.all_steps()):
      samples = step * config.train.global_batch
      if samples < 2 * config.train.global_batch * 10:  # too early to say anything
        continue
      model = checkpoints.load_params(
          models.build(arch), os.path.join(workdir, 'checkpoints', str(step), 'state')
      )
      accuracies = {
          t.name: zero_shot.evaluate(model, tokenizer, t, arch.vision.image_size)['acc1']
          for t in tasks
      }
      fields = ' '.join(f'{task}={acc:.3f}' for task, acc in accuracies.items())
      print(
          f'model={name} params={params} samples={samples} '
          f'compute_gflops={flops.forward_flops(arch) / 1e9 * samples:.3g} {fields} '
          f'train_s={train_s:.0f}',
          flush=True,
      )
    ckpts.close()


if __name__ == '__main__':
  main()
