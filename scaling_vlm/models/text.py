"""CLIP's text tower: a causal transformer pooled at the end-of-text token."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_vlm.models import layers
from scaling_vlm.models.config import ModelConfig, TextConfig


def token_embedding(t: TextConfig, dtype, rngs: nnx.Rngs) -> nnx.Embed:
  return nnx.Embed(
      t.vocab_size,
      t.width,
      dtype=dtype,
      rngs=rngs,
      embedding_init=layers.init(layers.normal(0.02), 'vocab', 'embed'),
  )


def project_at_eot(features: jax.Array, tokens: jax.Array, projection) -> jax.Array:
  """The features (B, T, width) at each row's EOT token (its highest id), projected."""
  eot = features[jnp.arange(features.shape[0]), jnp.argmax(tokens, axis=-1)]
  return eot @ projection[...].astype(features.dtype)


def text_block(
    config: ModelConfig, rngs: nnx.Rngs, inits: layers.BlockInit, **options
) -> layers.Block:
  """One pre-LN block of the text width; `options` (cross, mlp) as `layers.Block`."""
  t = config.text
  return layers.Block(
      t.width,
      t.heads,
      t.mlp_width,
      inits=inits,
      dtype=jnp.dtype(config.dtype),
      impl=config.attention_impl,
      rngs=rngs,
      **options,
  )


class TextTower(nnx.Module):
  """Token + learned position embedding, causal pre-LN transformer, `ln_final`, the features
  at the EOT token (the highest id in each row), and a linear projection without bias."""

  def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
    t = config.text
    dtype = jnp.dtype(config.dtype)
    self.context_length, self.vocab_size = t.context_length, t.vocab_size
    self.token_embedding = token_embedding(t, dtype, rngs)
    self.positional_embedding = layers.embedding(
        rngs, (t.context_length, t.width), 0.01, (None, 'embed')
    )
    inits = layers.block_init(
        config.init, layers.BlockInit.clip_text(t.width, t.mlp_width, t.layers), t.width, t.layers
    )
    self.blocks = layers.Stack(
        lambda r: text_block(config, r, inits),
        t.layers,
        scan=config.scan_layers,
        remat=config.remat,
        rngs=rngs,
    )
    self.ln_final = layers.layer_norm(t.width, dtype, rngs)
    self.text_projection = layers.embedding(
        rngs, (t.width, config.embed_dim), t.width**-0.5, ('embed', 'proj')
    )

  def __call__(self, tokens: jax.Array) -> jax.Array:
    layers.check_tokens(tokens, self.context_length, self.vocab_size)
    x = self.token_embedding(tokens)
    x = x + self.positional_embedding[: tokens.shape[1]].astype(x.dtype)
    x, _ = self.blocks(x, lambda block, x, _: block(x, causal=True))
    return project_at_eot(self.ln_final(x), tokens, self.text_projection)
