"""Scenes: plain data, everything `render` and `write_caption` need, and how one is sampled."""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections.abc import Sequence
from typing import Any

from scaling_vlm.data.synthetic.draws import choice, randint
from scaling_vlm.data.synthetic.words import (
    BACKGROUND_WORDS,
    COLOURS,
    MAX_OBJECTS,
    SHAPES,
    SIZES,
    TONES,
)


@dataclasses.dataclass(frozen=True)
class Mark:
  """Something painted on the image: a shape centred at pixel (x, y), `angle` in degrees."""

  shape: str
  x: int
  y: int
  diameter: int
  angle: int
  rgb: tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class SceneObject(Mark):
  """A mark the captions talk about, with its named colour and size."""

  colour: str
  size: str

  def region(self, image_size: int) -> tuple[str, str]:
    """(row, column) of the 3x3 cell holding the centre."""
    rows, cols = ('top', 'middle', 'bottom'), ('left', 'centre', 'right')
    return rows[3 * self.y // image_size], cols[3 * self.x // image_size]


@dataclasses.dataclass(frozen=True)
class Background:
  kind: str  # a key of BACKGROUND_WORDS
  tone: str  # 'light' or 'dark'
  rgb: tuple[float, float, float]
  rgb_end: tuple[float, float, float]  # the far end of a gradient; == rgb otherwise
  angle: float  # gradient direction, radians
  texture: float  # amplitude of the smooth texture, 0 unless textured
  offset: tuple[int, int]  # where the texture is cropped from its bank


@dataclasses.dataclass(frozen=True)
class Scene:
  image_size: int
  background: Background
  objects: tuple[SceneObject, ...]
  clutter: tuple[Mark, ...]  # distractor marks, never mentioned by captions
  noise: float  # standard deviation of the pixel noise, in 0..255 units
  noise_offset: tuple[int, int]  # where the pixel noise is cropped from its bank

  @functools.cached_property
  def loners(self) -> tuple[SceneObject, ...]:
    """Objects whose shape no other object has, so 'the star' or 'one star' is true of them."""
    shapes = [o.shape for o in self.objects]
    return tuple(o for o in self.objects if shapes.count(o.shape) == 1)

  @functools.cached_property
  def relations(self) -> tuple[tuple[int, str, int], ...]:
    """(a, relation, b) for every ordered pair of objects far enough apart to say where a is
    relative to b, along the axis that separates them more."""
    relations = []
    for a, oa in enumerate(self.objects):
      for b, ob in enumerate(self.objects):
        dx, dy = ob.x - oa.x, ob.y - oa.y
        if a == b or max(abs(dx), abs(dy)) < 0.15 * self.image_size:
          continue
        if abs(dx) >= abs(dy):
          relations.append((a, 'left of' if dx > 0 else 'right of', b))
        else:
          relations.append((a, 'above' if dy > 0 else 'below', b))
    return tuple(relations)

  def to_json(self) -> dict[str, Any]:
    size = self.image_size
    return {
        'background': self.background.kind,
        'tone': self.background.tone,
        'objects': [
            {
                'shape': o.shape,
                'colour': o.colour,
                'size': o.size,
                'region': ' '.join(o.region(size)),
                'x': round(o.x / size, 3),
                'y': round(o.y / size, 3),
            }
            for o in self.objects
        ],
        'relations': [[a, rel, b] for a, rel, b in self.relations if a < b],
        'clutter': len(self.clutter),
    }


# ---------------------------------------------------------------------------------------------
# Sampling a scene.

# Largest rotation either way, in degrees: a square or cross turned 45 degrees would read as a
# diamond or an x, and the regular polygons repeat after 360/n degrees anyway.
_MAX_ANGLE = {
    'circle': 0,
    'ring': 0,
    'square': 20,
    'diamond': 20,
    'cross': 20,
    'triangle': 60,
    'pentagon': 36,
    'hexagon': 30,
    'star': 36,
    'crescent': 180,
    'dot': 0,
    'stroke': 90,
}
_ANGLE_STEP = 10  # masks are cached per angle, so angles are quantised


def sample_scene(
    rng: random.Random,
    image_size: int,
    num_objects: int | None = None,
    shape: str | None = None,
    sizes: Sequence[str] = tuple(SIZES),
) -> Scene:
  """A random scene; `num_objects`, `shape` (for every object) and `sizes` constrain it for
  the evaluation sets."""
  background = _sample_background(rng, image_size)
  # Only colours that stand out from the background: a white disc on a white ground is not
  # something a caption should claim is visible.
  ground = [(a + b) / 2 for a, b in zip(background.rgb, background.rgb_end)]
  colours = [name for name, rgb in COLOURS.items() if math.dist(rgb, ground) >= 80]

  objects: list[SceneObject] = []
  for _ in range(num_objects or randint(rng, 1, MAX_OBJECTS)):
    name = shape or choice(rng, SHAPES)
    colour = choice(rng, colours)
    rgb = tuple(min(max(c + rng.uniform(-20, 20), 0), 255) for c in COLOURS[colour])
    size, diameter, x, y = _place(rng, image_size, choice(rng, sizes), objects)
    angle = _sample_angle(rng, name)
    objects.append(SceneObject(name, x, y, diameter, angle, rgb, colour, size))

  clutter = tuple(_sample_clutter(rng, image_size) for _ in range(randint(rng, 0, 4)))
  noise_offset = (randint(rng, 0, 3 * image_size), randint(rng, 0, 3 * image_size))
  return Scene(image_size, background, tuple(objects), clutter, rng.uniform(2, 12), noise_offset)


def _sample_background(rng: random.Random, image_size: int) -> Background:
  kind, tone = choice(rng, tuple(BACKGROUND_WORDS)), choice(rng, TONES)
  low, high = (165, 235) if tone == 'light' else (15, 80)
  level = rng.uniform(low, high)
  rgb = tuple(level + rng.uniform(-20, 20) for _ in range(3))
  shift = rng.uniform(30, 60) if kind == 'gradient' else 0
  shift = shift if level + shift <= high else -shift
  rgb_end = tuple(c + shift for c in rgb)
  texture = rng.uniform(10, 30) if kind == 'textured' else 0.0
  offset = (randint(rng, 0, 3 * image_size), randint(rng, 0, 3 * image_size))
  return Background(kind, tone, rgb, rgb_end, rng.uniform(0, 2 * math.pi), texture, offset)


def _place(
    rng: random.Random, image_size: int, size: str, others: Sequence[SceneObject]
) -> tuple[str, int, int, int]:
  """(size, diameter, x, y) of a new object inside the image and clear of the others.

  A crowded image may have no room for a large object; it then shrinks a size class rather
  than overlap, so the size word stays true. Small objects always fit in practice; if they do
  not, the last try is kept.
  """
  order = tuple(SIZES)
  while True:
    low, high = SIZES[size]
    diameter = max(round(rng.uniform(low, high) * image_size), 3)
    margin = diameter // 2 + 1
    for _ in range(20):
      x = randint(rng, margin, image_size - 1 - margin)
      y = randint(rng, margin, image_size - 1 - margin)
      if all(math.hypot(x - o.x, y - o.y) >= 0.45 * (diameter + o.diameter) for o in others):
        return size, diameter, x, y
    if size == order[0]:
      return size, diameter, x, y
    size = order[order.index(size) - 1]


def _sample_angle(rng: random.Random, shape: str) -> int:
  steps = _MAX_ANGLE[shape] // _ANGLE_STEP
  return _ANGLE_STEP * randint(rng, -steps, steps)


def _sample_clutter(rng: random.Random, image_size: int) -> Mark:
  """A dot or a short stroke in any colour, smaller than the smallest object."""
  shape = choice(rng, ('dot', 'stroke'))
  low, high = (0.03, 0.07) if shape == 'dot' else (0.08, 0.2)
  diameter = max(round(rng.uniform(low, high) * image_size), 2)
  rgb = (rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255))
  x, y = randint(rng, 0, image_size - 1), randint(rng, 0, image_size - 1)
  return Mark(shape, x, y, diameter, _sample_angle(rng, shape), rgb)
