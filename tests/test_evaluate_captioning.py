"""MaMMUT caption loss over held-out pairs equals the training loss on them, perplexity is its
exponential, and greedy captions come back beside their references."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from scaling_vlm import models
from scaling_vlm.data import synthetic, tokenizers, transforms
from scaling_vlm.evaluate import captioning
from scaling_vlm.train import losses

TOKENIZER = tokenizers.WordTokenizer(synthetic.VOCABULARY, 32)


def test_caption_loss_perplexity_and_samples():
  model = models.build('mammut_tiny-1', seed=1)
  source = synthetic.SyntheticWorld(seed=0, image_size=64, split='val', size=6)
  # Batches of 4 over 6 pairs: the padded rows of the second batch must not count.
  metrics, captions = captioning.evaluate(model, TOKENIZER, source, 64, batch_size=4, samples=2)
  records = [source[i] for i in range(6)]
  images = transforms.normalize(jnp.asarray(np.stack([r['image'] for r in records])))
  tokens = jnp.asarray(TOKENIZER([r['caption'] for r in records]))
  expected, _ = losses.caption_loss(model(images, tokens)['caption_logits'], tokens[:, 1:])
  assert metrics['caption_loss'] == pytest.approx(float(expected), rel=1e-5)
  assert metrics['perplexity'] == pytest.approx(math.exp(metrics['caption_loss']))
  assert [c['reference'] for c in captions] == [r['caption'] for r in records[:2]]
  assert all(isinstance(c['greedy'], str) for c in captions)


def test_captioning_a_clip_model_is_an_error():
  source = synthetic.SyntheticWorld(seed=0, image_size=64, split='val', size=2)
  with pytest.raises(TypeError, match='captioning needs a model that captions'):
    captioning.evaluate(models.build('tiny-1'), TOKENIZER, source, 64)
