"""Retrieval recall on a hand-built similarity matrix with several captions per image and
ties, both ways."""

import numpy as np
import pytest

from scaling_vlm import models
from scaling_vlm.data import synthetic, tokenizers
from scaling_vlm.evaluate import retrieval

# Images x captions; captions 0, 1 belong to image 0, caption 2 to image 1, 3 and 4 to image 2.
SIMILARITY = np.array(
    [
        [0.2, 0.9, 0.9, 0.1, 0.0],  # best own caption 0.9 tied with caption 2 -> rank 1
        [0.2, 0.1, 0.4, 0.3, 0.2],  # own caption first -> rank 0
        [0.0, 0.0, 0.0, 0.8, 0.8],  # its two captions tie with each other: still rank 0
    ]
)
IMAGE_OF_TEXT = np.array([0, 0, 1, 2, 2])


def test_ranks_are_pessimistic_against_negatives_only():
  positive = IMAGE_OF_TEXT[None, :] == np.arange(3)[:, None]
  np.testing.assert_array_equal(retrieval.ranks(SIMILARITY, positive), [1, 0, 0])


@pytest.mark.parametrize('chunk', [1, 2, 1024])
def test_recalls_both_ways(monkeypatch, chunk):
  monkeypatch.setattr(retrieval, '_CHUNK', chunk)
  # With unit image vectors, image i . caption t = SIMILARITY[i, t] both ways.
  out = retrieval.recalls(np.eye(3), SIMILARITY.T, IMAGE_OF_TEXT, ks=(1, 2, 10))
  # Image queries: image 0 loses its tie at top-1.
  assert out['text_retrieval_recall@1'] == pytest.approx(2 / 3)
  assert out['text_retrieval_recall@2'] == pytest.approx(1.0)
  # Caption queries: caption 0 ties with image 1 (0.2) and caption 2 is beaten by image 0.
  assert out['image_retrieval_recall@1'] == pytest.approx(3 / 5)
  assert out['image_retrieval_recall@2'] == pytest.approx(1.0)
  assert out['image_retrieval_recall@10'] == out['text_retrieval_recall@10'] == 1.0


def test_an_image_without_captions_is_an_error():
  class Source:

    def __len__(self):
      return 1

    def __getitem__(self, i):
      return {'key': 'k', 'image': np.zeros((32, 32, 3), np.uint8), 'captions': []}

  tokenizer = tokenizers.WordTokenizer(synthetic.VOCABULARY, 32)
  with pytest.raises(ValueError, match='at least one caption'):
    retrieval.evaluate(models.build('tiny-1'), tokenizer, Source(), 64, batch_size=4)
