"""The vision tower: a pre-LN ViT as in open_clip."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_vlm.models import layers
from scaling_vlm.models.config import ModelConfig, VisionConfig


def patchify(images: jax.Array, p: int) -> jax.Array:
  """(B, H, W, C) -> (B, H/p * W/p, p*p*C): non-overlapping patches in row-major order."""
  b, h, w, c = images.shape
  x = images.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // p) * (w // p), p * p * c)


def patch_embedding(
    v: VisionConfig, kernel: Callable[[int], Callable], dtype, rngs: nnx.Rngs
) -> nnx.Linear:
  """A stride-p convolution without bias, written as a matmul over flattened patches, whose
  kernel starts from `kernel(fan_in)`."""
  fan_in = v.patch_size**2 * 3
  return nnx.Linear(
      fan_in,
      v.width,
      use_bias=False,
      dtype=dtype,
      rngs=rngs,
      kernel_init=layers.init(kernel(fan_in), None, 'embed'),
  )


class VisionTower(nnx.Module):
  """Patch embedding, class token, learned positions, `ln_pre`, transformer, then pooling,
  `ln_post` and a linear projection into the joint embedding space."""

  def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
    v = config.vision
    dtype = jnp.dtype(config.dtype)
    scale = v.width**-0.5
    self.image_size, self.patch_size, self.pooling = v.image_size, v.patch_size, config.pooling
    # open_clip's ViT keeps PyTorch's defaults: Conv2d, MultiheadAttention, Linear.
    reference = config.init == 'open_clip'
    kernel = layers.pytorch_default if reference else layers.fan_in_normal
    self.patch_embed = patch_embedding(v, kernel, dtype, rngs)
    self.class_embedding = layers.embedding(rngs, (v.width,), scale, ('embed',))
    self.positional_embedding = layers.embedding(
        rngs, (v.num_tokens, v.width), scale, (None, 'embed')
    )
    self.ln_pre = layers.layer_norm(v.width, dtype, rngs)
    self.blocks = layers.Stack(
        lambda r: layers.Block(
            v.width,
            v.heads,
            v.mlp_width,
            inits=layers.block_init(
                config.init, layers.BlockInit.pytorch(v.width, v.mlp_width), v.width, v.layers
            ),
            dtype=dtype,
            impl=config.attention_impl,
            layer_scale=v.layer_scale_init,
            rngs=r,
        ),
        v.layers,
        scan=config.scan_layers,
        remat=config.remat,
        rngs=rngs,
    )
    self.ln_post = layers.layer_norm(v.width, dtype, rngs)
    self.proj = layers.embedding(rngs, (v.width, config.embed_dim), scale, ('embed', 'proj'))

  def patchify(self, images: jax.Array) -> jax.Array:
    """(B, H, W, 3) -> (B, H/p * W/p, p*p*3), patches in row-major order."""
    size, p = self.image_size, self.patch_size
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
      raise ValueError(
          f'images must have shape (batch, {size}, {size}, 3) for this model, '
          f'got {images.shape}.'
      )
    return patchify(images, p)

  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns the projected (unnormalised) embedding and the transformer's output tokens
    (class token first, before `ln_post`), which MaMMUT's decoder cross-attends to."""
    x = self.patch_embed(self.patchify(images))
    cls = jnp.broadcast_to(self.class_embedding[...].astype(x.dtype), (x.shape[0], 1, x.shape[-1]))
    x = jnp.concatenate([cls, x], axis=1) + self.positional_embedding[...].astype(x.dtype)
    x = self.ln_pre(x)
    tokens, _ = self.blocks(x, lambda block, x, _: block(x))
    pooled = tokens[:, 0] if self.pooling == 'cls' else tokens.mean(axis=1)
    embedding = self.ln_post(pooled) @ self.proj[...].astype(tokens.dtype)
    return embedding, tokens
