"""What a run's milestone checkpoints take, by `checkpoint.milestone_state`: before (every
milestone with the full train state) and after (parameters alone, or in bf16).

    python experiments/benchmarks/checkpoint_storage.py
    python experiments/benchmarks/checkpoint_storage.py --estimate ViT-L-14 --samples 1.28e9 \
        --batch 32768 --measure

`source=abstract` lines: the exact array bytes of one checkpoint from the model's abstract
train state (shapes only, nothing allocated) times the milestones of `--samples` at `--batch`
with `--milestones`. `source=disk` lines: a real tiny run trained with each setting, the bytes
its checkpoint folder holds once it is finished (orbax's metadata and compression included).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import jax
from flax import nnx

from configs import presets
from scaling_vlm import models, run as run_lib
from scaling_vlm.train import step as step_lib, storage, trainer

STATES = ('full', 'params', 'params_bf16')


def config_for(model: str, samples: str, batch: int, milestones: str, state: str = 'params'):
  config = presets.for_model(model)
  config.train.samples, config.train.global_batch, config.train.warmup = samples, batch, '0'
  config.checkpoint.milestones, config.checkpoint.milestone_state = milestones, state
  config.log.tensorboard = False
  return config


def nbytes(tree) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def estimate(model: str, args) -> str:
  config = config_for(model, args.samples, args.batch, args.milestones)
  plan = run_lib.RunPlan.from_config(config)
  _, params = nnx.split(models.abstract(run_lib.model_config(config).replace(scan_layers=True)))
  opt = trainer.optimizer(config)
  full = nbytes(jax.eval_shape(lambda p: step_lib.create_state(p, opt), params))
  per = {'full': full, 'params': nbytes(params), 'params_bf16': nbytes(params) // 2}
  n = len(plan.milestone_steps)
  cells = ' '.join(f'{state}={storage.size(n * per[state])}' for state in STATES)
  return (
      f'model={model} source=abstract params={sum(x.size for x in jax.tree.leaves(params))} '
      f'samples={plan.total_samples} batch={plan.global_batch} milestones={n} '
      f'full_checkpoint={storage.size(full)} {cells} '
      f'params_vs_full={per["params"] / full:.3f}'
  )


def on_disk(model: str, args) -> str:
  sizes = {}
  for state in STATES:
    with tempfile.TemporaryDirectory() as workdir:
      config = config_for(model, args.tiny_samples, args.tiny_batch, args.milestones, state)
      trainer.train(config, workdir)
      folder = run_lib.Workdir(workdir).checkpoints
      files = [os.path.join(root, f) for root, _, names in os.walk(folder) for f in names]
      sizes[state] = sum(os.path.getsize(f) for f in files)
      milestones = len(run_lib.Workdir(workdir).saved_steps())
  cells = ' '.join(f'{state}={storage.size(sizes[state])}' for state in STATES)
  return (
      f'model={model} source=disk samples={args.tiny_samples} batch={args.tiny_batch} '
      f'milestones={milestones} {cells} params_vs_full={sizes["params"] / sizes["full"]:.3f}'
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--estimate', nargs='+', default=['tiny-3', 'ViT-S-32-alt'])
  parser.add_argument('--samples', default='384', help='of the estimated runs')
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--milestones', default='geometric:8')
  parser.add_argument('--measure', nargs='*', default=['tiny-3'], help='trained for real')
  parser.add_argument('--tiny_samples', default='384')
  parser.add_argument('--tiny_batch', type=int, default=32)
  args = parser.parse_args()
  for model in args.estimate:
    print(estimate(model, args), flush=True)
  for model in args.measure:
    print(on_disk(model, args), flush=True)


if __name__ == '__main__':
  main()
