"""CLIMP: CLIP with both towers made of Mamba blocks (Shabtay et al. 2026, arXiv 2601.06891).

* Vision: patch embedding, `ln_pre`, VMamba-style blocks (a selective scan over the patch
  grid in four orders, merged back, then an MLP), the mean over patches, `ln_post`, a linear
  projection. There is no class token and no positional table: the depthwise convolution and
  the scan orders carry position, so any image size that is a multiple of the patch works.
* Text: token embedding, causal Mamba blocks (causal depthwise conv1d + selective scan),
  `ln_final`, the features at the EOT token (the highest id, as in CLIP's text tower; the
  last non-pad token of a well-formed text), a linear projection without bias. Causality
  makes the EOT state a summary of the whole text, which is why it is pooled there.

Same interface, loss and logit scale as `CLIP`, so the trainer and evaluation run it as is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_vlm.models import layers
from scaling_vlm.models.clip import CLIP
from scaling_vlm.models.config import ModelConfig
from scaling_vlm.models.mamba import MambaBlock
from scaling_vlm.models.text import project_at_eot, token_embedding
from scaling_vlm.models.vit import patch_embedding, patchify


class MambaVisionTower(nnx.Module):

  def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
    v = config.vision
    dtype = jnp.dtype(config.dtype)
    self.patch_size = v.patch_size
    self.patch_embed = patch_embedding(v, layers.fan_in_normal, dtype, rngs)
    self.ln_pre = layers.layer_norm(v.width, dtype, rngs)
    self.blocks = layers.Stack(
        lambda r: MambaBlock(
            v.width,
            v.mlp_width,
            config.vision_ssm,
            two_d=True,
            depth=v.layers,
            dtype=dtype,
            rngs=r,
        ),
        v.layers,
        scan=config.scan_layers,
        remat=config.remat,
        rngs=rngs,
    )
    self.ln_post = layers.layer_norm(v.width, dtype, rngs)
    self.proj = layers.embedding(
        rngs, (v.width, config.embed_dim), v.width**-0.5, ('embed', 'proj')
    )

  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(B, H, W, 3) with H, W multiples of the patch size -> the projected (unnormalised)
    embedding and the blocks' output tokens (B, H/p * W/p, width) in row-major order."""
    p = self.patch_size
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] % p or images.shape[2] % p:
      raise ValueError(
          f'images must have shape (batch, height, width, 3) with height and width multiples '
          f'of the patch size {p}, got {images.shape}.'
      )
    grid = (images.shape[1] // p, images.shape[2] // p)
    x = self.ln_pre(self.patch_embed(patchify(images, p)))
    tokens, _ = self.blocks(x, lambda block, x, _: (block(x, grid), None))
    pooled = self.ln_post(tokens.mean(axis=1))
    return pooled @ self.proj[...].astype(pooled.dtype), tokens


class MambaTextTower(nnx.Module):

  def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
    t = config.text
    dtype = jnp.dtype(config.dtype)
    self.context_length, self.vocab_size = t.context_length, t.vocab_size
    self.token_embedding = token_embedding(t, dtype, rngs)
    self.blocks = layers.Stack(
        lambda r: MambaBlock(
            t.width,
            t.mlp_width,
            config.text_ssm,
            two_d=False,
            depth=t.layers,
            dtype=dtype,
            rngs=r,
        ),
        t.layers,
        scan=config.scan_layers,
        remat=config.remat,
        rngs=rngs,
    )
    self.ln_final = layers.layer_norm(t.width, dtype, rngs)
    self.text_projection = layers.embedding(
        rngs, (t.width, config.embed_dim), t.width**-0.5, ('embed', 'proj')
    )

  def features(self, tokens: jax.Array) -> jax.Array:
    """`ln_final` of every position (B, T, width); position i depends on tokens[:, :i+1]."""
    layers.check_tokens(tokens, self.context_length, self.vocab_size)
    x, _ = self.blocks(self.token_embedding(tokens), lambda block, x, _: (block(x), None))
    return self.ln_final(x)

  def __call__(self, tokens: jax.Array) -> jax.Array:
    return project_at_eot(self.features(tokens), tokens, self.text_projection)


class CLIMP(CLIP):
  """CLIP's interface, loss and logit scale over Mamba towers."""

  vision_tower, text_tower = MambaVisionTower, MambaTextTower
