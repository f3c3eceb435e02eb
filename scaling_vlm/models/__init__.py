"""The model zoo: CLIP, MaMMUT and CLIMP in Flax NNX, built from open_clip names."""

from __future__ import annotations

import math

import jax
from flax import nnx

from scaling_vlm.models.climp import CLIMP
from scaling_vlm.models.clip import CLIP
from scaling_vlm.models.config import ModelConfig, TextConfig, VisionConfig
from scaling_vlm.models.mammut import MaMMUT
from scaling_vlm.models.registry import ZOO, get_config, model_names

ARCH_CLASSES = {'clip': CLIP, 'mammut': MaMMUT, 'climp': CLIMP}


def build(config: ModelConfig | str, seed: int = 0, **overrides) -> CLIP | MaMMUT | CLIMP:
  """Initialises a model from a zoo name or a config (parameters on the default device)."""
  if isinstance(config, str):
    config = get_config(config, **overrides)
  elif overrides:
    config = config.replace(**overrides)
  return ARCH_CLASSES[config.arch](config, nnx.Rngs(params=seed))


def abstract(config: ModelConfig | str, **overrides) -> CLIP | MaMMUT | CLIMP:
  """The model with shapes only (no memory, no compute): for counting and for sharding."""
  return nnx.eval_shape(lambda: build(config, **overrides))


def count_params(model: nnx.Module) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


__all__ = [
    'CLIMP',
    'CLIP',
    'MaMMUT',
    'ModelConfig',
    'TextConfig',
    'VisionConfig',
    'ZOO',
    'abstract',
    'build',
    'count_params',
    'get_config',
    'model_names',
]
