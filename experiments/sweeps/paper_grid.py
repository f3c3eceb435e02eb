"""The paper's grid: CLIP vs MaMMUT on DataComp, Re-LAION and DFN, from 1.28M to 3.07B samples.

    DATA_ROOT=/mnt/gcs/data python -m experiments.launch experiments/sweeps/paper_grid.py \
        --dry-run --accelerator v5p --mfu 0.4
    python -m experiments.launch experiments/sweeps/paper_grid.py --only 'clip_*datacomp*' ...

Set DATA_ROOT (below, or in the environment) to the folder holding one img2dataset shard
folder per dataset (DATASETS) and the CLIP BPE vocabulary. The trainer reads local paths: on
Cloud TPU mount the bucket with `tpu_scripts/setup.sh --mount-bucket` (gcsfuse, /mnt/gcs).
The folder names become the results table's pretrain_dataset, spelled as the paper's tables.

What the grid holds (Nezhurina et al. 2025, §3 and appendix; the per-scale settings are our
plausible reading, not a copy of the paper's tables; widen LRS to sweep them):

* models: the ViT ladder S/32, M/32, B/32, S/16, M/16, B/16, L/14, each as CLIP and MaMMUT;
* cosine runs: one per model x samples-seen scale x dataset, with the global batch, peak LR and
  warmup of that scale (SCALES): batch grows with the run's length so that every run takes
  1k-100k steps, warmup is ~10% of the steps at the smallest scale and ~4% at the largest;
* constant-LR runs: one per model x dataset to the largest scale at one batch, with cooldown
  branches (linear to 0 over the last 20%) ending at each scale from 64M up; the const run
  keeps its checkpoints at every scale and branch point.
"""

import os

from experiments.sweep import Run
from scaling_vlm.train.config import parse_count

DATA_ROOT = os.environ.get('DATA_ROOT', '/mnt/gcs/scaling-vlm-data')
DATASETS = {  # short name in run names -> shard folder under DATA_ROOT (= pretrain_dataset)
    'datacomp': 'datacomp_1b',
    'relaion': 'relaion2b-en',
    'dfn': 'dfn2b',
}
BPE_PATH = f'{DATA_ROOT}/bpe_simple_vocab_16e6.txt.gz'
MODELS = ('ViT-S-32', 'ViT-M-32', 'ViT-B-32', 'ViT-S-16', 'ViT-M-16', 'ViT-B-16', 'ViT-L-14')
ARCHS = {'clip': 'configs/clip.py', 'mammut': 'configs/mammut.py'}

# samples seen -> (global batch, peak LR, warmup in samples). The paper's scales; 30.72M and
# 3.072B are whole numbers of batches.
SCALES = {
    '1.28M': (1024, 1e-3, '128k'),  # 1,250 steps, warmup 125
    '6.4M': (2048, 1e-3, '640k'),  # 3,125 steps, warmup 313
    '12.8M': (4096, 1e-3, '1.28M'),  # 3,125 steps, warmup 313
    '30.72M': (4096, 1e-3, '2.56M'),  # 7,500 steps, warmup 625
    '64M': (8192, 1e-3, '5.12M'),  # 7,812 steps, warmup 625
    '128M': (16384, 1e-3, '10.24M'),  # 7,812 steps, warmup 625
    '300M': (16384, 1e-3, '16.384M'),  # 18,310 steps, warmup 1,000
    '640M': (32768, 1e-3, '32.768M'),  # 19,531 steps, warmup 1,000
    '1.28B': (32768, 1e-3, '65.536M'),  # 39,062 steps, warmup 2,000
    '3.072B': (32768, 1e-3, '131.072M'),  # 93,750 steps, warmup 4,000
}
LRS = {}  # e.g. {'1.28M': (5e-4, 1e-3, 2e-3)}: more peak LRs at a scale, one run each

# Constant LR: one batch and warmup for the whole run; cooldowns over the last 20% of a scale.
CONST_BATCH, CONST_LR, CONST_WARMUP = 16384, 1e-3, 16_384_000  # warmup: 1,000 steps
CONST_SAMPLES = '3.072B'  # 187,500 steps
COOLDOWN_SCALES = ('64M', '128M', '300M', '640M', '1.28B', '3.072B')
COOLDOWN_FRACTION = 0.2
SCHEDULES = ('cosine', 'const')  # drop 'const' for the cosine grid only


def data(dataset: str) -> dict:
  return {
      'data.source': 'wds',
      'data.shards': f'{DATA_ROOT}/{DATASETS[dataset]}',
      'data.tokenizer': 'clip_bpe',
      'data.bpe_path': BPE_PATH,
  }


def cooldown_start(scale: str) -> int:
  """The branch point: 80% of the way, on a whole step of the constant run."""
  samples = parse_count(scale, scale)
  return round(samples * (1 - COOLDOWN_FRACTION) / CONST_BATCH) * CONST_BATCH


def cosine_runs(arch: str, model: str, dataset: str):
  for scale, (batch, lr, warmup) in SCALES.items():
    for peak in LRS.get(scale, (lr,)):
      suffix = '' if peak == lr else f'-lr{peak:g}'
      yield Run(
          f'{arch}_{model}_{dataset}_cosine_{scale}{suffix}',
          f'{ARCHS[arch]}:{model}',
          {
              **data(dataset),
              'train.samples': scale,
              'train.global_batch': batch,
              'train.warmup': warmup,
              'optim.lr': peak,
              'optim.schedule': 'cosine',
          },
      )


def const_runs(arch: str, model: str, dataset: str):
  shared = {
      **data(dataset),
      'train.global_batch': CONST_BATCH,
      'train.warmup': CONST_WARMUP,
      'optim.lr': CONST_LR,
  }
  parent = f'{arch}_{model}_{dataset}_const'
  # Kept checkpoints: every scale (constant-LR points of the law) and every branch point.
  kept = {parse_count(scale, scale) for scale in SCALES}
  kept |= {cooldown_start(scale) for scale in COOLDOWN_SCALES}
  end = parse_count(CONST_SAMPLES, CONST_SAMPLES)
  milestones = ','.join(str(s) for s in sorted(kept) if CONST_BATCH <= s <= end)
  yield Run(
      parent,
      f'{ARCHS[arch]}:{model}',
      {
          **shared,
          'train.samples': CONST_SAMPLES,
          'optim.schedule': 'const',
          'checkpoint.milestones': milestones,
      },
  )
  for scale in COOLDOWN_SCALES:
    yield Run(
        f'{arch}_{model}_{dataset}_cooldown_{scale}',
        f'{ARCHS[arch]}:{model}',
        {
            **shared,
            'train.samples': scale,
            'optim.schedule': 'cooldown',
            'cooldown.start': cooldown_start(scale),
            'cooldown.shape': 'linear',
        },
        parent=parent,
    )


def runs():
  for dataset in DATASETS:
    for arch in ARCHS:
      for model in MODELS:
        if 'cosine' in SCHEDULES:
          yield from cosine_runs(arch, model, dataset)
        if 'const' in SCHEDULES:
          yield from const_runs(arch, model, dataset)
