"""Zero-shot classification: class-name x template text classifiers, top-k accuracy and
mean per-class recall.

The classifier of a class is the normalised mean of its templates' normalised text
embeddings (CLIP's recipe); an image is assigned the class whose classifier it is most
similar to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scaling_vlm.evaluate.embeddings import Tokenizer, image_embeddings, text_embeddings


def classifier(
    model, tokenizer: Tokenizer, classnames: Sequence[str], templates: Sequence[str]
) -> np.ndarray:
  """(embed, classes) unit-norm class embeddings from every template of every class name."""
  prompts = [template.format(c=name) for name in classnames for template in templates]
  embeddings = text_embeddings(model, tokenizer, prompts)
  per_class = embeddings.reshape(len(classnames), len(templates), -1).mean(axis=1)
  return (per_class / np.linalg.norm(per_class, axis=-1, keepdims=True)).T


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
  """A zero-shot task (name, classnames, templates, source with 'label'). Labels outside the
  class-name list mean the names do not belong to this data: an error, not a wrong score."""
  weights = classifier(model, tokenizer, task.classnames, task.templates)
  embeddings, fields = image_embeddings(model, task.source, image_size, ('label',), batch_size)
  labels = np.asarray(fields['label'])
  bad = labels[(labels < 0) | (labels >= len(task.classnames))]
  if len(bad):
    raise ValueError(
        f'task {task.name!r}: label {int(bad[0])} has no class name ({len(task.classnames)} '
        'names given); the class-name file does not match this data.'
    )
  return scores(embeddings @ weights, labels, len(task.classnames))
