"""Zero-shot scores on hand-built logits, and a classifier built from a real tiny model."""

import numpy as np
import pytest

from scaling_vlm import models
from scaling_vlm.data import synthetic, tokenizers
from scaling_vlm.evaluate import zero_shot


def test_scores_on_a_hand_built_example_with_ties():
  logits = np.array(
      [
          [0.9, 0.1, 0.0],  # label 0: right
          [0.5, 0.5, 0.0],  # label 1: tied with a wrong class -> counted wrong at top-1
          [0.1, 0.2, 0.3],  # label 0: last -> wrong at top-1, and at top-2
          [0.0, 0.0, 1.0],  # label 2: right
      ]
  )
  labels = np.array([0, 1, 0, 2])
  out = zero_shot.scores(logits, labels, num_classes=3)
  assert out['acc1'] == pytest.approx(0.5)
  assert out['acc5'] == pytest.approx(1.0)  # 3 classes: top-5 holds everything
  # Recall per class: class 0 1/2, class 1 0/1, class 2 1/1.
  assert out['mean_per_class_recall'] == pytest.approx((0.5 + 0.0 + 1.0) / 3)


def test_classifier_is_the_normalised_mean_of_template_embeddings():
  model = models.build('tiny-1')
  tokenizer = tokenizers.WordTokenizer(synthetic.VOCABULARY, 32)
  names, templates = ('circle', 'star'), ('a {c} .', 'a picture of a {c} .')
  weights = np.asarray(zero_shot.classifier(model, tokenizer, names, templates))
  assert weights.shape == (32, 2)
  np.testing.assert_allclose(np.linalg.norm(weights, axis=0), 1.0, rtol=1e-5)
  prompts = [t.format(c='star') for t in templates]
  mean = np.asarray(model.encode_text(tokenizer(prompts))).mean(axis=0)
  np.testing.assert_allclose(weights[:, 1], mean / np.linalg.norm(mean), atol=1e-5)
