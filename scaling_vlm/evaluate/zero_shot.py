"""Zero-shot classification: class-name x template text classifiers, top-k accuracy and
mean per-class recall.

The classifier of a class is the normalised mean of its templates' normalised text
embeddings (CLIP's recipe); an image is assigned the class whose classifier it is most
similar to.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling_vlm.data import transforms

Tokenizer = Callable[[Sequence[str]], np.ndarray]


@nnx.jit
def _encode_text(model, tokens):
  return model.encode_text(tokens)


@nnx.jit
def _encode_image(model, images):
  return model.encode_image(transforms.normalize(images))


def classifier(
    model, tokenizer: Tokenizer, classnames: Sequence[str], templates: Sequence[str]
) -> jax.Array:
  """(embed, classes) unit-norm class embeddings from every template of every class name."""
  prompts = [template.format(c=name) for name in classnames for template in templates]
  embeddings = _encode_text(model, jnp.asarray(tokenizer(prompts)))
  per_class = embeddings.reshape(len(classnames), len(templates), -1).mean(axis=1)
  return (per_class / jnp.linalg.norm(per_class, axis=-1, keepdims=True)).T


def image_embeddings(model, source, image_size: int, batch_size: int = 256):
  """Unit-norm embeddings and labels of every record of `source`, eval-cropped, in order."""
  embeddings, labels = [], []
  for start in range(0, len(source), batch_size):
    records = [source[i] for i in range(start, min(start + batch_size, len(source)))]
    images = np.stack(
        [
            transforms.center_crop(transforms.decode(r['image'], image_size), image_size)
            for r in records
        ]
    )
    # The last batch is padded to full size so that it compiles once.
    padded = np.concatenate([images, np.repeat(images[-1:], batch_size - len(images), 0)])
    embeddings.append(np.asarray(_encode_image(model, jnp.asarray(padded)))[: len(images)])
    labels += [r['label'] for r in records]
  return np.concatenate(embeddings), np.asarray(labels)


def scores(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
  """Top-1 and top-5 accuracy and mean per-class recall. Ties go against the model: a class
  counts as predicted at rank k only if fewer than k classes score strictly higher and no
  tie with a wrong class pushes it out."""
  true = logits[np.arange(len(labels)), labels]
  higher = (logits > true[:, None]).sum(axis=1)
  tied = (logits == true[:, None]).sum(axis=1) - 1  # other classes scoring exactly the same
  rank = higher + tied  # pessimistic rank, 0 = best
  top1 = rank < 1
  recall = [top1[labels == c].mean() for c in range(num_classes) if (labels == c).any()]
  return {
      'acc1': float(top1.mean()),
      'acc5': float((rank < min(5, num_classes)).mean()),
      'mean_per_class_recall': float(np.mean(recall)),
  }


def evaluate(model, tokenizer: Tokenizer, task, image_size: int, batch_size: int = 256) -> dict:
  """A zero-shot task (name, classnames, templates, source with 'label')."""
  weights = classifier(model, tokenizer, task.classnames, task.templates)
  embeddings, labels = image_embeddings(model, task.source, image_size, batch_size)
  logits = embeddings @ np.asarray(weights)
  return scores(logits, labels, len(task.classnames))
