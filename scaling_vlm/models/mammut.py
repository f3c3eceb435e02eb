"""MaMMUT as trained for the paper: one text decoder, run twice per step.

* Contrastive pass: no attention mask and no cross-attention; the text embedding is the mean
  of `ln_final` over all positions, with no projection (embed = text width).
* Captioning pass: causal, input tokens[:-1] predicting tokens[1:], cross-attention to all
  image tokens (class + patches, before `ln_post`, mapped by `vision_to_text`) after
  self-attention blocks 0, r, 2r, ... (r = `cross_attn_ratio`), untied zero-initialised
  LM head.
The image embedding is the mean over all image tokens, then `ln_post` and a projection.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_vlm.models import layers
from scaling_vlm.models.config import ModelConfig
from scaling_vlm.models.text import text_block, token_embedding
from scaling_vlm.models.vit import VisionTower


class DecoderUnit(nnx.Module):
  """`cross_attn_ratio` self-attention blocks with a cross-attention block after the first;
  the decoder is a stack of identical units, so it can be scanned."""

  def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
    # The fork's decoder blocks keep PyTorch's defaults (its init_parameters skips them).
    t = config.text
    inits = layers.block_init(
        config.init, layers.BlockInit.pytorch(t.width, t.mlp_width), t.width, t.layers
    )
    block = functools.partial(text_block, config, rngs, inits)
    # Smaller MaMMUTs drop the MLP of a self-attention block that cross-attention follows.
    self.self_attn = nnx.List(
        [block(mlp=i > 0 or config.mlp_before_cross_attn) for i in range(config.cross_attn_ratio)]
    )
    self.cross_attn = block(cross=True)

  def __call__(
      self,
      x: jax.Array,
      *,
      context: jax.Array | None = None,
      cache: dict | None = None,
      index: jax.Array | None = None,
  ):
    """The contrastive pass when neither `context` (image tokens) nor `cache` is given; else
    the causal captioning pass. When decoding, `cache` holds this unit's self-attention keys
    and values and the cross-attention keys and values of the image."""
    captioning = context is not None or cache is not None
    new_self_cache = []
    for i, block in enumerate(self.self_attn):
      self_cache = None if cache is None else cache['self'][i]
      x, self_cache = block(x, causal=captioning, cache=self_cache, index=index)
      new_self_cache.append(self_cache)
      if i == 0 and captioning:
        kv = cache['cross'] if cache is not None else self.cross_attn.context_kv(context)
        x, _ = self.cross_attn(x, context_kv=kv)
    return x, (None if cache is None else {'self': new_self_cache, 'cross': cache['cross']})

  def init_cache(self, context: jax.Array, max_length: int) -> dict:
    """Empty self-attention caches and the image's cross-attention keys and values."""
    batch = context.shape[0]
    attn = self.self_attn[0].attn
    _, heads, head_dim = attn.qkv.kernel.shape[-3:]
    empty = jnp.zeros((batch, max_length, heads, head_dim), context.dtype)
    return {
        'self': [(empty, empty) for _ in self.self_attn],
        'cross': self.cross_attn.context_kv(context),
    }


class TextDecoder(nnx.Module):

  def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
    t = config.text
    dtype = jnp.dtype(config.dtype)
    self.context_length, self.vocab_size = t.context_length, t.vocab_size
    self.token_embedding = token_embedding(t, dtype, rngs)
    self.positional_embedding = layers.embedding(
        rngs, (t.context_length, t.width), 0.01, (None, 'embed')
    )
    self.units = layers.Stack(
        lambda r: DecoderUnit(config, r),
        t.layers // config.cross_attn_ratio,
        scan=config.scan_layers,
        remat=config.remat,
        rngs=rngs,
    )
    self.ln_final = layers.layer_norm(t.width, dtype, rngs)
    # Zero-initialised so that the first caption loss is exactly ln(vocab).
    self.lm_head = nnx.Linear(
        t.width,
        t.vocab_size,
        use_bias=False,
        dtype=dtype,
        rngs=rngs,
        kernel_init=layers.init(layers.zeros, 'embed', 'vocab'),
    )

  def _embed(self, tokens: jax.Array) -> jax.Array:
    layers.check_tokens(tokens, self.context_length, self.vocab_size)
    x = self.token_embedding(tokens)
    return x + self.positional_embedding[: tokens.shape[1]].astype(x.dtype)

  def encode(self, tokens: jax.Array) -> jax.Array:
    """The contrastive pass: unmasked, no cross-attention, mean over every position."""
    x, _ = self.units(self._embed(tokens), lambda unit, x, _: unit(x))
    return self.ln_final(x).mean(axis=1)

  def caption_logits(self, tokens: jax.Array, context: jax.Array) -> jax.Array:
    """The captioning pass: next-token logits (B, T, vocab) for input tokens (B, T)."""
    x, _ = self.units(self._embed(tokens), lambda unit, x, _: unit(x, context=context))
    return self.lm_head(self.ln_final(x))

  def init_cache(self, context: jax.Array, max_length: int):
    """A decoding cache for `max_length` positions, stacked over units."""
    _, cache = self.units(
        context[:, :1], lambda unit, x, _: (x, unit.init_cache(context, max_length))
    )
    return cache

  def decode_step(self, token: jax.Array, index: jax.Array, cache):
    """Feeds `token` (B,) at position `index`; returns float32 logits (B, vocab) for the
    next position and the updated cache."""
    x = self.token_embedding(token[:, None])
    position = jax.lax.dynamic_slice_in_dim(self.positional_embedding[...], index, 1)
    x = x + position.astype(x.dtype)
    x, cache = self.units(x, lambda unit, x, c: unit(x, cache=c, index=index), cache)
    return self.lm_head(self.ln_final(x))[:, 0].astype(jnp.float32), cache


class MaMMUT(nnx.Module):

  def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
    self.config = config
    self.visual = VisionTower(config, rngs)
    self.decoder = TextDecoder(config, rngs)
    v_width, t_width = config.vision.width, config.text.width
    # The fork's map_viz2txt_kv is torch.randn: std 1. The cross-attention's ln_1_kv normalises
    # the mapped tokens, so this scale sets how fast Adam moves the map, not what attends.
    std = 1.0 if config.init == 'open_clip' else v_width**-0.5
    self.vision_to_text = layers.embedding(rngs, (v_width, t_width), std, ('embed', 'proj'))
    self.logit_scale = layers.LogitScale(config.init_logit_scale, config.init_logit_bias)

  def image_context(self, image_tokens: jax.Array) -> jax.Array:
    """Vision-tower tokens mapped to the decoder's width, for cross-attention."""
    return image_tokens @ self.vision_to_text[...].astype(image_tokens.dtype)

  def encode_image(self, images: jax.Array) -> jax.Array:
    return layers.l2_normalize(self.visual(images)[0])

  def encode_text(self, tokens: jax.Array) -> jax.Array:
    return layers.l2_normalize(self.decoder.encode(tokens))

  def __call__(self, images: jax.Array, tokens: jax.Array) -> dict[str, jax.Array]:
    """Both passes. `caption_logits[:, i]` predicts `tokens[:, i + 1]`."""
    image_emb, image_tokens = self.visual(images)
    return {
        'image_emb': layers.l2_normalize(image_emb),
        'text_emb': self.encode_text(tokens),
        'caption_logits': self.decoder.caption_logits(
            tokens[:, :-1], self.image_context(image_tokens)
        ),
        **self.logit_scale.outputs(),
    }
