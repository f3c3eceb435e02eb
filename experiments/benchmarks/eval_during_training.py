"""What evaluation during training (`eval.tasks`) costs the training loop.

    python experiments/benchmarks/eval_during_training.py                  # tiny-3 on CPU
    python experiments/benchmarks/eval_during_training.py --model ViT-B-32 --batch 256 --steps 200

Trains one run per mode on the synthetic world, an evaluation every `--every` steps: `off` (no
evaluation), `background` (the default: a device copy of the parameters scored in a thread while
training goes on) and `between_steps` (`eval.background=False`). One line per mode: seconds per
step over the steps after the first (which compiles), the evaluations, seconds per evaluation
(the first, which compiles the evaluation's programs, apart), how long the loop waited for
them in all, and the loop's time against `off`. The evaluation sets are rendered before timing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from configs import presets
from scaling_vlm.evaluate import tasks as tasks_lib
from scaling_vlm.train import evals, metrics, trainer

MODES = {'off': None, 'background': True, 'between_steps': False}


def config_for(args, background):
  config = presets.for_model(args.model)
  config.train.global_batch, config.train.samples = args.batch, str(args.batch * args.steps)
  config.train.warmup = str(args.batch)
  config.checkpoint.milestones = str(args.batch * args.steps)
  config.log.every_steps, config.log.tensorboard = 1, False
  if background is not None:
    config.eval.tasks = ','.join(args.tasks)
    config.eval.every = str(args.every * args.batch)
    config.eval.synthetic_size, config.eval.batch_size = args.synthetic_size, args.eval_batch
    config.eval.background = background
  return config


def measure(args, mode: str, background, durations: list[float]) -> dict:
  durations.clear()
  with tempfile.TemporaryDirectory() as workdir:
    trainer.train(config_for(args, background), workdir)
    rows = metrics.read(workdir)
  steps = rows[1:]  # the first step compiles
  per_step = (rows[-1]['time'] - rows[0]['time']) / len(steps)
  return {
      'mode': mode,
      'step_s': per_step,
      'evals': len(durations),
      'first_eval_s': durations[0] if durations else 0.0,
      'eval_s': statistics.median(durations[1:]) if len(durations) > 1 else 0.0,
      'loop_wait_s': sum(r.get('perf/eval_wait_s', 0.0) for r in steps),
      'loop_s': per_step * len(steps),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--model', default='tiny-3')
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--steps', type=int, default=60)
  parser.add_argument('--every', type=int, default=10, help='steps between evaluations')
  parser.add_argument('--tasks', nargs='+', default=['synthetic/colour', 'synthetic/retrieval'])
  parser.add_argument('--synthetic_size', type=int, default=500)
  parser.add_argument('--eval_batch', type=int, default=250)
  args = parser.parse_args()

  model = presets.for_model(args.model)
  size = trainer.run_lib.model_config(model).vision.image_size
  for task in tasks_lib.make_tasks(args.tasks, size, args.synthetic_size):
    task.data  # rendered once per process: not part of what an evaluation costs in a long run

  durations: list[float] = []
  evaluate = evals.TrainingEvals._evaluate

  def timed(self, step, params):
    evaluate(self, step, params)
    durations.append(self.last_seconds)

  evals.TrainingEvals._evaluate = timed
  base = None
  for mode, background in MODES.items():
    row = measure(args, mode, background, durations)
    base = base or row['loop_s']
    row['loop_vs_off'] = row['loop_s'] / base
    fields = {'model': args.model, 'batch': args.batch, 'steps': args.steps, **row}
    cells = (f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in fields.items())
    print(' '.join(cells), flush=True)


if __name__ == '__main__':
  main()
