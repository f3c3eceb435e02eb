"""The model zoo: open_clip names mapped to architectures (README, 'The model zoo').

Rows are (embed, vision width/layers/heads, patch sizes, text width/layers/heads). Names
follow open_clip so results line up with the paper's: `ViT-B-32`, `mammut_ViT-B-32`, ...
The `tiny-*` ladder is for CPU tests and the synthetic world: 64 px images, 32 tokens and a
1024-word vocabulary.

CLIMP entries are named after the CLIP model whose budget they match (`climp_ViT-B-16`,
`climp_tiny-2`): the same embed dim, widths, patch size, image size, context and vocabulary;
the vision tower keeps the ViT's depth and MLP with a selective-scan mixer in place of
attention, and the text tower (Mamba LM blocks, no MLP) has the depth that best matches the
CLIP text tower's parameters (about twice as many layers).
"""

from __future__ import annotations

import dataclasses
import difflib

from scaling_vlm.models import custom
from scaling_vlm.models.config import (
    TEXT_SSM,
    VISION_SSM,
    ModelConfig,
    TextConfig,
    VisionConfig,
)

# (size, patch sizes, name suffix, embed, (vision width, layers, heads), (text width, layers,
#  heads), whether the MaMMUT decoder keeps the MLP before cross-attention; None: no MaMMUT)
_FAMILIES = (
    ('S', (32, 16), '-alt', 256, (384, 12, 6), (256, 10, 4), None),
    ('S', (32, 16, 14), '', 384, (384, 12, 6), (384, 12, 6), False),
    ('M', (32, 16), '-alt', 384, (512, 12, 8), (384, 12, 6), None),
    ('M', (32, 16, 14), '', 512, (512, 12, 8), (512, 12, 8), False),
    ('B', (32, 16, 14), '', 512, (768, 12, 12), (512, 12, 8), False),
    ('L', (32, 16, 14), '', 768, (1024, 24, 16), (768, 12, 12), True),
    ('H', (32, 16, 14), '', 1024, (1280, 32, 16), (1024, 24, 16), True),
)

# (name, width, vision layers, text layers, heads) of the CPU ladder; head width 16.
_TINY = (
    ('tiny-1', 32, 2, 2, 2),
    ('tiny-2', 48, 2, 2, 3),
    ('tiny-3', 64, 3, 2, 4),
    ('tiny-4', 96, 4, 4, 6),
    ('tiny-5', 128, 4, 4, 8),
)


# (matched CLIP name, CLIMP text layers, SSM state size) of the CLIMP entries.
_CLIMP = (
    ('ViT-S-16', 22, 16),
    ('ViT-B-16', 22, 16),
    ('ViT-L-14', 23, 16),
    ('ViT-H-14', 48, 16),
    # At widths 32-128, Mamba's N = 16 would make the per-direction B and C projections
    # (2N per channel) outweigh the attention they replace; N = 8 keeps the budgets matched.
    ('tiny-1', 3, 8),
    ('tiny-2', 3, 8),
    ('tiny-3', 3, 8),
    ('tiny-4', 7, 8),
    ('tiny-5', 7, 8),
)


def _climp(clip: ModelConfig, text_layers: int, state: int) -> ModelConfig:
  return dataclasses.replace(
      clip,
      name=f'climp_{clip.name}',
      arch='climp',
      text=dataclasses.replace(clip.text, layers=text_layers, mlp_ratio=0.0),
      vision_ssm=dataclasses.replace(VISION_SSM, state=state),
      text_ssm=dataclasses.replace(TEXT_SSM, state=state),
  )


def _build_zoo() -> dict[str, ModelConfig]:
  zoo: dict[str, ModelConfig] = {}
  for size, patches, suffix, embed, (vw, vl, vh), (tw, tl, th), mammut_mlp in _FAMILIES:
    for patch in patches:
      name = f'ViT-{size}-{patch}{suffix}'
      # M-16-alt was trained with LayerScale (init 1e-4) in its vision tower.
      layer_scale = 1e-4 if name == 'ViT-M-16-alt' else None
      vision = VisionConfig(vw, vl, vh, patch, layer_scale_init=layer_scale)
      zoo[name] = ModelConfig(name, 'clip', embed, vision, TextConfig(tw, tl, th))
      if mammut_mlp is None:  # the -alt shapes exist for CLIP only
        continue
      # MaMMUT B-16 was trained with a 768-wide, 12-head decoder that keeps every MLP.
      text = TextConfig(768, 12, 12) if name == 'ViT-B-16' else TextConfig(tw, tl, th)
      zoo[f'mammut_{name}'] = ModelConfig(
          f'mammut_{name}',
          'mammut',
          text.width,
          vision,
          text,
          mlp_before_cross_attn=mammut_mlp or name == 'ViT-B-16',
      )
  zoo['ViT-B-16-text-plus'] = ModelConfig(
      'ViT-B-16-text-plus', 'clip', 768, VisionConfig(768, 12, 12, 16), TextConfig(768, 12, 12)
  )

  for name, width, vision_layers, text_layers, heads in _TINY:
    vision = VisionConfig(width, vision_layers, heads, patch_size=8, image_size=64)
    text = TextConfig(width, text_layers, heads, context_length=32, vocab_size=1024)
    zoo[name] = ModelConfig(name, 'clip', width, vision, text)
    zoo[f'mammut_{name}'] = ModelConfig(f'mammut_{name}', 'mammut', width, vision, text)

  for clip_name, text_layers, state in _CLIMP:
    zoo[f'climp_{clip_name}'] = _climp(zoo[clip_name], text_layers, state)
  return zoo


ZOO: dict[str, ModelConfig] = _build_zoo()


def model_names(arch: str | None = None) -> list[str]:
  return [name for name, cfg in ZOO.items() if arch is None or cfg.arch == arch]


def get_config(name: str, **overrides) -> ModelConfig:
  """The zoo entry `name`, or the model a JSON file `name` (ending in .json) defines
  (`custom.load`), with optional field overrides (`dtype='bfloat16'`, ...)."""
  if name.endswith('.json'):
    config = custom.load(name)
  elif name not in ZOO:
    close = difflib.get_close_matches(name, ZOO, n=5, cutoff=0.5)
    hint = f' Did you mean: {", ".join(close)}?' if close else ''
    raise ValueError(
        f'Unknown model name {name!r}.{hint} Give a model JSON file (a path ending in .json) '
        f'or a known name: {", ".join(ZOO)}.'
    )
  else:
    config = ZOO[name]
  return config.replace(**overrides) if overrides else config


def lookup(name: str, numbers: str = '') -> ModelConfig:
  """A run's model (`model.name`, `model.custom`): the model `numbers` (JSON) defines, named
  `name`; without numbers, `get_config(name)`."""
  if not numbers:
    return get_config(name)
  if name.endswith('.json'):
    raise ValueError(
        f'model.name={name!r} is a model file, and model.custom defines a model too; give one.'
    )
  config = custom.from_json(numbers, name)
  if name in ZOO and config != ZOO[name]:
    # Results rows are grouped by model name: another model under a zoo name would join its.
    raise ValueError(
        f"model.custom defines another model than the zoo's {name!r}; give it a name of its "
        'own (model.name).'
    )
  return config
