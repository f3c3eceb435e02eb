"""A CPU sweep on the synthetic world: tiny CLIP and MaMMUT, cosine and constant-LR runs.

    python -m experiments.launch experiments/sweeps/tiny_local.py --dry-run
    python -m experiments.launch experiments/sweeps/tiny_local.py --out runs/tiny-sweep --parallel 2
    python -m experiments.collect runs/tiny-sweep --tasks synthetic --synthetic_size 500

Eight runs of 2k-8k samples at batch 64, a few minutes on a laptop in all. The constant-LR run
has cooldown branches at 2k and 8k samples, the paper's cheap alternative to one cosine run per
length.
"""

from experiments.sweep import Run

BATCH = 64
WARMUP = 256  # samples: 4 steps
SAMPLES = (2048, 8192)


def common(samples: int, schedule: str) -> dict:
  return {
      'train.samples': samples,
      'train.global_batch': BATCH,
      'train.warmup': WARMUP,
      'optim.schedule': schedule,
      'log.tensorboard': False,
  }


def runs():
  for config, model in (('configs/clip.py', 'tiny-1'), ('configs/mammut.py', 'mammut_tiny-1')):
    for samples in SAMPLES:
      yield Run(f'{model}-cos-{samples}', f'{config}:{model}', common(samples, 'cosine'))
  # One constant-LR run to the largest length, kept at every branch point, and its cooldowns
  # over the last quarter of each length.
  const = f'tiny-2-const-{SAMPLES[-1]}'
  starts = {samples: samples * 3 // 4 for samples in SAMPLES}
  milestones = ','.join(str(s) for s in sorted({*starts.values(), *SAMPLES}))
  yield Run(
      const,
      'configs/clip.py:tiny-2',
      {**common(SAMPLES[-1], 'const'), 'checkpoint.milestones': milestones},
  )
  for samples, start in starts.items():
    yield Run(
        f'tiny-2-cooldown-{samples}',
        'configs/clip.py:tiny-2',
        {**common(samples, 'cooldown'), 'cooldown.start': start},
        parent=const,
    )
  yield Run('tiny-2-cos-8192', 'configs/clip.py:tiny-2', common(8192, 'cosine'))
