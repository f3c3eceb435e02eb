"""Captioning, for models whose architecture captions (MaMMUT): caption loss and perplexity on
held-out pairs, and greedy captions.

The loss is the training objective's (token cross-entropy ignoring pad), averaged over every
token of the held-out set rather than per batch, so it does not depend on the batch size;
perplexity is its exponential.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling_vlm.data import transforms
from scaling_vlm.evaluate.embeddings import Tokenizer, eval_image, pad_rows, to_device
from scaling_vlm.models import generate
from scaling_vlm.train import losses


@nnx.jit
def _loss_sum(model, images, tokens, weights):
  """Summed token cross-entropy and token count; `weights` zeroes the padding rows."""
  logits = model(transforms.normalize(images), tokens)['caption_logits']
  labels = jnp.where(weights[:, None] > 0, tokens[:, 1:], 0)
  mean, count = losses.caption_loss(logits, labels)
  return mean * count, count


def evaluate(
    model, tokenizer: Tokenizer, source, image_size: int, batch_size: int = 64, samples: int = 4
) -> tuple[dict[str, float], list[dict[str, str]]]:
  """Caption loss and perplexity over `source` (records with 'caption'), and the greedy
  captions of its first `samples` images beside their references."""
  if not model.config.spec.captions:
    raise TypeError(f'captioning needs a model that captions, not a {model.config.arch} model')
  total, count = 0.0, 0
  for start in range(0, len(source), batch_size):
    records = [source[i] for i in range(start, min(start + batch_size, len(source)))]
    images = pad_rows(np.stack([eval_image(r, image_size) for r in records]), batch_size)
    tokens = pad_rows(tokenizer([r['caption'] for r in records]), batch_size)
    weights = (np.arange(batch_size) < len(records)).astype(np.float32)
    loss, n = _loss_sum(model, to_device(images), to_device(tokens), to_device(weights))
    total, count = total + float(loss), count + int(n)
  if count == 0:
    raise ValueError(f'{source!r} holds no caption tokens')
  mean = total / count
  records = [source[i] for i in range(min(samples, len(source)))]
  images = np.stack([eval_image(r, image_size) for r in records])
  generated = np.asarray(generate.greedy(model, jnp.asarray(transforms.normalize(images))))
  captions = [
      {'key': r['key'], 'reference': r['caption'], 'greedy': tokenizer.decode(ids.tolist())}
      for r, ids in zip(records, generated)
  ]
  return {'caption_loss': mean, 'perplexity': math.exp(mean)}, captions
