"""CLIP: a ViT and a causal text transformer trained with a contrastive loss."""

from __future__ import annotations

import jax
from flax import nnx

from scaling_vlm.models import layers
from scaling_vlm.models.config import ModelConfig
from scaling_vlm.models.text import TextTower
from scaling_vlm.models.vit import VisionTower


class CLIP(nnx.Module):
  # The towers; CLIMP is this model with Mamba ones.
  vision_tower, text_tower = VisionTower, TextTower

  def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
    self.config = config
    self.visual = self.vision_tower(config, rngs)
    self.text = self.text_tower(config, rngs)
    self.logit_scale = layers.LogitScale(config.init_logit_scale, config.init_logit_bias)

  def encode_image(self, images: jax.Array) -> jax.Array:
    return layers.l2_normalize(self.visual(images)[0])

  def encode_text(self, tokens: jax.Array) -> jax.Array:
    return layers.l2_normalize(self.text(tokens))

  def __call__(self, images: jax.Array, tokens: jax.Array) -> dict[str, jax.Array]:
    """The inputs of the contrastive loss: unit-norm embeddings and the log-temperature."""
    return {
        'image_emb': self.encode_image(images),
        'text_emb': self.encode_text(tokens),
        **self.logit_scale.outputs(),
    }
