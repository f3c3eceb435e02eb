"""Presets shared by the family config files: a zoo name, or `tiny` for the CPU."""

from __future__ import annotations

from scaling_vlm import models
from scaling_vlm.train.config import base_config


def make(arch: str, preset: str):
  """`preset` is a zoo name of family `arch`, the same without the family prefix
  (`mammut_ViT-B-32` or `ViT-B-32` for MaMMUT), or `tiny`."""
  config = base_config()
  prefix = models.ARCHS[arch].prefix
  if preset == 'tiny':
    return tiny(config, f'{prefix}tiny-2')
  name = preset if preset.startswith(prefix) else f'{prefix}{preset}'
  if models.get_config(name).arch != arch:
    raise ValueError(
        f'{name!r} is not a {arch} model; {arch} names: ' f'{", ".join(models.model_names(arch))}.'
    )
  config.model.name = name
  if name.removeprefix(prefix).startswith('tiny'):
    return tiny(config, name)
  return config


def for_model(name: str):
  """The preset of any zoo name, its family read from the zoo."""
  return make(models.get_config(name).arch, name)


# Peak learning rate of each tiny model, tuned on the synthetic world: larger models want smaller
# rates, and one rate for all turns a scaling study upside down (experiments/mini_study/NOTES.md).
TINY_LR = {
    'tiny-1': 2e-3,
    'tiny-2': 1e-3,
    'tiny-3': 5e-4,
    'tiny-4': 5e-4,
    'tiny-5': 5e-4,
    'mammut_tiny-1': 1e-3,
    'mammut_tiny-2': 1e-3,
    'mammut_tiny-3': 1e-3,
    'mammut_tiny-4': 5e-4,
    'mammut_tiny-5': 5e-4,
}


def tiny(config, name: str):
  """About a minute on a laptop CPU: the synthetic world, float32, small batches, and the
  mini study's 8k samples, where `tiny-4` learns colour (0.86) and the smallest models barely."""
  config.model.name = name
  config.model.dtype = 'float32'
  # At the mini study's budget the tiny models learn colour far faster from the scaled init
  # than from the reference's (tiny-4: 0.86 against 0.47 at 8k samples; NOTES.md).
  config.model.init = 'scaled'
  config.data.source = 'synthetic'
  config.data.tokenizer = 'word'
  config.data.read_threads = 0  # rendering holds the GIL: read threads would only contend
  config.train.global_batch = 32
  config.train.samples = '8k'
  config.train.warmup = '512'
  config.optim.lr = TINY_LR.get(name, 2e-3)
  config.optim.schedule = 'cosine'
  config.checkpoint.milestones = 'geometric:4'
  config.checkpoint.latest_every_steps = 200
  config.log.every_steps = 20
  return config
