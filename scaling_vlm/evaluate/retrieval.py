"""Image-text retrieval with several captions per image: recall@1/5/10 both ways.

The MS-COCO 5k convention (as in clip_benchmark): an image query is right at k if *any* of
its captions ranks within the top k texts (`text_retrieval_recall@k`, the paper's column
name); a caption query is right at k if its image ranks within the top k images
(`image_retrieval_recall@k`). Ties go against the model, as in `zero_shot.scores`: a wrong
candidate scoring exactly as much as the right one ranks ahead of it.
"""

from __future__ import annotations

import numpy as np

from scaling_vlm.evaluate.embeddings import Tokenizer, image_embeddings, text_embeddings

KS = (1, 5, 10)
_CHUNK = 1024  # query rows per similarity block: 1024 x 25k captions is 100 MB of float32


def ranks(similarity: np.ndarray, positive: np.ndarray) -> np.ndarray:
  """Pessimistic rank (0 = best) of each query's best positive candidate: how many negatives
  score at least as much as it. similarity (Q, C); positive (Q, C) bool, >= 1 per row."""
  best = np.where(positive, similarity, -np.inf).max(axis=1)
  return ((similarity >= best[:, None]) & ~positive).sum(axis=1)


def recalls(
    image_emb: np.ndarray, text_emb: np.ndarray, image_of_text: np.ndarray, ks=KS
) -> dict[str, float]:
  """Recall@k both ways; `image_of_text[t]` is the index of caption t's image."""
  text_ranks, image_ranks = [], []
  for start in range(0, len(image_emb), _CHUNK):
    rows = np.arange(start, min(start + _CHUNK, len(image_emb)))
    similarity = image_emb[rows] @ text_emb.T
    text_ranks.append(ranks(similarity, image_of_text[None, :] == rows[:, None]))
  for start in range(0, len(text_emb), _CHUNK):
    rows = np.arange(start, min(start + _CHUNK, len(text_emb)))
    similarity = text_emb[rows] @ image_emb.T
    positive = np.arange(len(image_emb))[None, :] == image_of_text[rows, None]
    image_ranks.append(ranks(similarity, positive))
  text_ranks, image_ranks = np.concatenate(text_ranks), np.concatenate(image_ranks)
  out = {}
  for k in ks:
    out[f'text_retrieval_recall@{k}'] = float((text_ranks < k).mean())
    out[f'image_retrieval_recall@{k}'] = float((image_ranks < k).mean())
  return out


def evaluate(
    model, tokenizer: Tokenizer, source, image_size: int, batch_size: int = 256
) -> dict[str, float]:
  """Retrieval over `source`, whose records carry 'captions' (a list per image)."""
  images, fields = image_embeddings(model, source, image_size, ('captions',), batch_size)
  captions = [c for caps in fields['captions'] for c in caps]
  image_of_text = np.repeat(np.arange(len(images)), [len(c) for c in fields['captions']])
  if not captions or any(not caps for caps in fields['captions']):
    raise ValueError(f'{source!r}: every image needs at least one caption')
  texts = text_embeddings(model, tokenizer, captions, batch_size)
  return recalls(images, texts, image_of_text)
