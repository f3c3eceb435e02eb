"""The model zoo: CLIP, MaMMUT and CLIMP in Flax NNX, built from open_clip names.

The zoo, its configs and the architecture specs are plain Python: reading a run's plan or
compute needs no JAX. Building a model imports Flax and the family's module.
"""

from __future__ import annotations

import math

from scaling_vlm.models.archs import ARCHS, Arch
from scaling_vlm.models.config import ModelConfig, TextConfig, VisionConfig
from scaling_vlm.models.registry import ZOO, get_config, model_names


def build(config: ModelConfig | str, seed: int = 0, **overrides):
  """Initialises a model from a zoo name or a config (parameters on the default device)."""
  from flax import nnx  # pylint: disable=import-outside-toplevel  # see the module docstring

  if isinstance(config, str):
    config = get_config(config, **overrides)
  elif overrides:
    config = config.replace(**overrides)
  return config.spec.model_class(config, nnx.Rngs(params=seed))


def abstract(config: ModelConfig | str, **overrides):
  """The model with shapes only (no memory, no compute): for counting and for sharding."""
  from flax import nnx  # pylint: disable=import-outside-toplevel

  return nnx.eval_shape(lambda: build(config, **overrides))


def count_params(model) -> int:
  from flax import nnx  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel

  return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def param_count(config: ModelConfig | str) -> int:
  """The parameters of a zoo name or config, counted on its shapes alone. Layers scanned: the
  count is the same either way, and one scanned block traces faster than a stack of them."""
  return count_params(abstract(config, scan_layers=True))


__all__ = [
    'ARCHS',
    'Arch',
    'ModelConfig',
    'TextConfig',
    'VisionConfig',
    'ZOO',
    'abstract',
    'build',
    'count_params',
    'get_config',
    'model_names',
    'param_count',
]
