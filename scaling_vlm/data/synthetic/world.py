"""The synthetic world as random-access sources: the protocol every split and evaluation set
shares, and `SyntheticWorld`, the image-caption pairs for training and validation."""

from __future__ import annotations

import operator
import random
from typing import Any

from scaling_vlm.data.synthetic.captions import write_caption
from scaling_vlm.data.synthetic.rendering import render
from scaling_vlm.data.synthetic.scenes import Scene, sample_scene


class SceneSource:
  """Random-access records (grain's protocol): record `index` is a pure function of
  (seed, stream, index), so sources are stateless, picklable and reproducible."""

  def __init__(self, stream: str, seed: int, image_size: int, size: int):
    if image_size < 32:
      raise ValueError(f'image_size must be >= 32 (shapes need pixels), got {image_size}.')
    if not 0 <= size <= 2**31 - 1:
      raise ValueError(f'size must be in 0..2**31 - 1, got {size}.')
    self.stream, self.seed, self.image_size, self.size = stream, seed, image_size, size

  def __len__(self) -> int:
    return self.size

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = operator.index(index)
    if not 0 <= index < self.size:
      raise IndexError(f'index {index} is out of range for a source of {self.size} records.')
    # Seeding from a string hashes it (SHA-512), so nearby indices give unrelated streams.
    rng = random.Random(f'synthetic/{self.seed}/{self.stream}/{index}')
    scene = self._scene(rng)
    record = {
        'key': f'{self.stream}-{index:010d}',
        'shard': 'synthetic',
        'image': render(scene),
        'error': None,
        'json': scene.to_json(),
    }
    return record | self._annotate(scene, rng)

  def _scene(self, rng: random.Random) -> Scene:
    return sample_scene(rng, self.image_size)

  def _annotate(self, scene: Scene, rng: random.Random) -> dict[str, Any]:
    """The text fields of a record."""
    return {'caption': write_caption(scene, rng)}

  def __repr__(self) -> str:
    return (
        f'{type(self).__name__}(stream={self.stream!r}, seed={self.seed}, '
        f'image_size={self.image_size}, size={self.size})'
    )


class SyntheticWorld(SceneSource):
  """Image-caption pairs for pre-training ('train') or validation loss ('val').

  `caption_noise` is the share of records whose caption describes another scene: a noisier
  pool against a filtered one, as the paper compares pre-training datasets. The draw is made
  apart from the scene's own randomness, so a noisy world holds the clean world's images, and
  its captions wherever it does not swap them.
  """

  SPLITS = ('train', 'val')

  def __init__(
      self,
      seed: int = 0,
      image_size: int = 64,
      split: str = 'train',
      size: int = 2**31 - 1,
      caption_noise: float = 0.0,
  ):
    if split not in self.SPLITS:
      raise ValueError(f'Unknown split {split!r}; valid splits are {self.SPLITS}.')
    if not 0.0 <= caption_noise < 1.0:
      raise ValueError(f'caption_noise must be in [0, 1), got {caption_noise}.')
    super().__init__(split, seed, image_size, size)
    self.caption_noise = caption_noise

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = super().__getitem__(index)
    if self.caption_noise:
      rng = random.Random(f'synthetic/{self.seed}/{self.stream}/{index}/caption_noise')
      if rng.random() < self.caption_noise:
        record['caption'] = write_caption(sample_scene(rng, self.image_size), rng)
    return record
