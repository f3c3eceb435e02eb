"""The evaluation sets: zero-shot classification tasks and the image-text retrieval split.

Each is its own stream of the world (`world.SceneSource`), so evaluation scenes are never
training scenes.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from scaling_vlm.data.synthetic.captions import write_captions
from scaling_vlm.data.synthetic.draws import choice, randint
from scaling_vlm.data.synthetic.scenes import Scene, sample_scene
from scaling_vlm.data.synthetic.words import COLOURS, MAX_OBJECTS, NUMBERS, SHAPES
from scaling_vlm.data.synthetic.world import SceneSource

# Each task's prompts: a class name `{c}` in templates worded like the captions.
ZERO_SHOT_TEMPLATES: dict[str, tuple[str, ...]] = {
    'shape': (
        'a photo of a {c}.',
        'a picture with a {c}.',
        'an image of a {c}.',
        'a drawing of a {c}.',
        'there is a {c} in the image.',
    ),
    'colour': (
        'a photo of a {c} shape.',
        'an image of a {c} object.',
        'a drawing of a shape in {c}.',
        'the shape is {c}.',
        'a picture showing a {c} figure.',
    ),
    'count': (
        'a photo of {c} shapes.',
        'an image with {c} objects.',
        'there are {c} shapes in the image.',
        'a drawing of {c} figures.',
        '{c} things on a background.',
    ),
    'shape_colour': (
        'a photo of one {c}.',
        'an image showing one {c}.',
        'a drawing of a single {c}.',
        'there is one {c} in the image.',
        'a picture with a single {c}.',
    ),
}
_CLASSNAMES: dict[str, tuple[str, ...]] = {
    'shape': SHAPES,
    'colour': tuple(COLOURS),
    'count': NUMBERS,
    'shape_colour': tuple(f'{colour} {shape}' for colour in COLOURS for shape in SHAPES),
}


class ZeroShotSource(SceneSource):
  """Scenes for one zero-shot task, each with the integer 'label' of its class."""

  def __init__(self, task: str, seed: int = 0, image_size: int = 64, size: int = 1000):
    if task not in _CLASSNAMES:
      raise ValueError(f'Unknown zero-shot task {task!r}; valid tasks are {tuple(_CLASSNAMES)}.')
    super().__init__(task, seed, image_size, size)

  def _scene(self, rng: random.Random) -> Scene:
    if self.stream == 'count':  # one to four objects sharing a shape, so only number differs
      return sample_scene(
          rng,
          self.image_size,
          randint(rng, 1, MAX_OBJECTS),
          shape=choice(rng, SHAPES),
          sizes=('small', 'medium'),
      )
    # One dominant object: shape and colour are then unambiguous.
    return sample_scene(rng, self.image_size, 1, sizes=('medium', 'large'))

  def _annotate(self, scene: Scene, rng: random.Random) -> dict[str, Any]:
    obj = scene.objects[0]
    label = _CLASSNAMES[self.stream].index(
        {
            'shape': obj.shape,
            'colour': obj.colour,
            'count': NUMBERS[len(scene.objects) - 1],
            'shape_colour': f'{obj.colour} {obj.shape}',
        }[self.stream]
    )
    return super()._annotate(scene, rng) | {'label': label}


@dataclasses.dataclass(frozen=True)
class ZeroShotTask:
  """Classify images by the caption prompt they match best: `templates` formatted with
  `c=` each of `classnames`; `source` records carry 'label', an index into classnames."""

  name: str
  classnames: tuple[str, ...]
  templates: tuple[str, ...]
  source: ZeroShotSource


def zero_shot_tasks(seed: int = 0, image_size: int = 64, size: int = 1000) -> list[ZeroShotTask]:
  """'shape', 'colour', 'count' and the compositional 'shape_colour' (120 classes)."""
  return [
      ZeroShotTask(name, _CLASSNAMES[name], templates, ZeroShotSource(name, seed, image_size, size))
      for name, templates in ZERO_SHOT_TEMPLATES.items()
  ]


class RetrievalSource(SceneSource):
  """Scenes with five captions each ('captions'), from five different templates, for
  image-text retrieval; 'caption' is the first."""

  CAPTIONS_PER_IMAGE = 5

  def __init__(self, seed: int = 0, image_size: int = 64, size: int = 1000):
    super().__init__('retrieval', seed, image_size, size)

  def _annotate(self, scene: Scene, rng: random.Random) -> dict[str, Any]:
    captions = write_captions(scene, rng, self.CAPTIONS_PER_IMAGE)
    return {'caption': captions[0], 'captions': captions}


def retrieval_split(seed: int = 0, image_size: int = 64, size: int = 1000) -> RetrievalSource:
  return RetrievalSource(seed, image_size, size)
