"""A procedural image-text world: every command of the codebase, offline, on a laptop CPU.

Each record is a small scene -- a plain, gradient or textured background, one to four shapes
(10 shapes x 12 colours x 3 sizes, anywhere in the image), a few distractor marks and pixel
noise -- with a caption drawn from varied templates. Captions are informative but partial:
each mentions only some attributes, and several scenes fit one caption. Together with the
clutter, noise and small, hard-to-tell shapes (a 9-pixel pentagon against a hexagon), that
keeps tiny models improving with model size and samples seen instead of saturating, which is
what lets us fit scaling laws on it.

The code reads top to bottom: `sample_scene` draws a `Scene` (plain data), `render` paints
it, `write_caption` describes it. Sources (`SyntheticWorld`, the zero-shot tasks, the
retrieval split) follow grain's random-access protocol: record `index` is a pure function of
(seed, stream, index), where every split and evaluation set is its own stream, so evaluation
scenes are never training scenes.

Speed (about 5,700 records/s on one busy laptop-class core at 64 px, image + caption + json)
comes from drawing scalars with Python's `random` (numpy's per-call overhead would dominate),
anti-aliased masks computed once per (shape, diameter, angle) and cached, channel-first
canvases, and noise cropped from fixed banks instead of drawn per pixel.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# ---------------------------------------------------------------------------------------------
# The world's nouns and adjectives. The first word of each synonym list is the canonical name
# used in json attributes and zero-shot class names.

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    'circle': ('circle', 'disc', 'disk'),
    'square': ('square',),
    'triangle': ('triangle',),
    'star': ('star',),
    'cross': ('cross',),
    'ring': ('ring', 'donut'),
    'diamond': ('diamond', 'rhombus'),
    'hexagon': ('hexagon',),
    'pentagon': ('pentagon',),
    'crescent': ('crescent', 'moon'),
}
SHAPES: tuple[str, ...] = tuple(SHAPE_WORDS)

# Base RGB of each named colour; objects jitter around it.
COLOURS: dict[str, tuple[int, int, int]] = {
    'red': (215, 35, 35),
    'orange': (245, 135, 20),
    'yellow': (240, 215, 30),
    'green': (40, 165, 55),
    'blue': (30, 70, 215),
    'purple': (125, 40, 175),
    'pink': (245, 125, 190),
    'brown': (125, 75, 30),
    'white': (245, 245, 245),
    'black': (15, 15, 15),
    'grey': (128, 128, 128),
    'cyan': (30, 205, 215),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {name: (name,) for name in COLOURS} | {
    'purple': ('purple', 'violet'),
    'grey': ('grey', 'gray'),
    'cyan': ('cyan', 'turquoise'),
}

# Diameter as a fraction of the image side; the gaps between the ranges keep the size words
# honest.
SIZES: dict[str, tuple[float, float]] = {
    'small': (0.14, 0.20),
    'medium': (0.24, 0.32),
    'large': (0.38, 0.50),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    'small': ('small', 'little', 'tiny'),
    'medium': ('medium', 'medium sized'),
    'large': ('large', 'big'),
}

# Regions are the cells of a 3x3 grid, keyed by (row, column).
REGION_WORDS: dict[tuple[str, str], tuple[str, ...]] = {
    ('top', 'left'): ('in the top left', 'in the upper left corner'),
    ('top', 'centre'): ('at the top', 'near the top'),
    ('top', 'right'): ('in the top right', 'in the upper right corner'),
    ('middle', 'left'): ('on the left', 'on the left side'),
    ('middle', 'centre'): ('in the centre', 'in the middle', 'in the center'),
    ('middle', 'right'): ('on the right', 'on the right side'),
    ('bottom', 'left'): ('in the bottom left', 'in the lower left corner'),
    ('bottom', 'centre'): ('at the bottom', 'near the bottom'),
    ('bottom', 'right'): ('in the bottom right', 'in the lower right corner'),
}
RELATION_WORDS: dict[str, tuple[str, ...]] = {
    'left of': ('to the left of', 'left of'),
    'right of': ('to the right of', 'right of'),
    'above': ('above', 'over'),
    'below': ('below', 'under', 'beneath'),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    'plain': ('plain', 'flat'),
    'gradient': ('gradient', 'shaded'),
    'textured': ('textured', 'noisy', 'mottled'),
}
TONES = ('light', 'dark')
NUMBERS = ('one', 'two', 'three', 'four')
MAX_OBJECTS = len(NUMBERS)
_THINGS = (('shape', 'shapes'), ('object', 'objects'), ('figure', 'figures'), ('thing', 'things'))

# How often a mention includes each attribute: low enough that captions stay partial and fit
# the tiny models' 32-token context.
_P_COLOUR, _P_SIZE, _P_REGION = 0.7, 0.3, 0.2


# ---------------------------------------------------------------------------------------------
# Scenes: plain data, everything `render` and `write_caption` need.


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
  for _ in range(num_objects or _randint(rng, 1, MAX_OBJECTS)):
    name = shape or _choice(rng, SHAPES)
    colour = _choice(rng, colours)
    rgb = tuple(min(max(c + rng.uniform(-20, 20), 0), 255) for c in COLOURS[colour])
    size, diameter, x, y = _place(rng, image_size, _choice(rng, sizes), objects)
    angle = _sample_angle(rng, name)
    objects.append(SceneObject(name, x, y, diameter, angle, rgb, colour, size))

  clutter = tuple(_sample_clutter(rng, image_size) for _ in range(_randint(rng, 0, 4)))
  noise_offset = (_randint(rng, 0, 3 * image_size), _randint(rng, 0, 3 * image_size))
  return Scene(image_size, background, tuple(objects), clutter, rng.uniform(2, 12), noise_offset)


# `random.randint` and `random.choice` go through `randrange`, which costs about ten times a
# `random()` call; a scene and its caption take some forty draws.
def _randint(rng: random.Random, low: int, high: int) -> int:
  """Uniform in low..high, both included."""
  return low + int(rng.random() * (high - low + 1))


def _choice(rng: random.Random, options: Sequence[Any]) -> Any:
  return options[int(rng.random() * len(options))]


def _sample_background(rng: random.Random, image_size: int) -> Background:
  kind, tone = _choice(rng, tuple(BACKGROUND_WORDS)), _choice(rng, TONES)
  low, high = (165, 235) if tone == 'light' else (15, 80)
  level = rng.uniform(low, high)
  rgb = tuple(level + rng.uniform(-20, 20) for _ in range(3))
  shift = rng.uniform(30, 60) if kind == 'gradient' else 0
  shift = shift if level + shift <= high else -shift
  rgb_end = tuple(c + shift for c in rgb)
  texture = rng.uniform(10, 30) if kind == 'textured' else 0.0
  offset = (_randint(rng, 0, 3 * image_size), _randint(rng, 0, 3 * image_size))
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
      x = _randint(rng, margin, image_size - 1 - margin)
      y = _randint(rng, margin, image_size - 1 - margin)
      if all(math.hypot(x - o.x, y - o.y) >= 0.45 * (diameter + o.diameter) for o in others):
        return size, diameter, x, y
    if size == order[0]:
      return size, diameter, x, y
    size = order[order.index(size) - 1]


def _sample_angle(rng: random.Random, shape: str) -> int:
  steps = _MAX_ANGLE[shape] // _ANGLE_STEP
  return _ANGLE_STEP * _randint(rng, -steps, steps)


def _sample_clutter(rng: random.Random, image_size: int) -> Mark:
  """A dot or a short stroke in any colour, smaller than the smallest object."""
  shape = _choice(rng, ('dot', 'stroke'))
  low, high = (0.03, 0.07) if shape == 'dot' else (0.08, 0.2)
  diameter = max(round(rng.uniform(low, high) * image_size), 2)
  rgb = (rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255))
  x, y = _randint(rng, 0, image_size - 1), _randint(rng, 0, image_size - 1)
  return Mark(shape, x, y, diameter, _sample_angle(rng, shape), rgb)


# ---------------------------------------------------------------------------------------------
# Rendering.

_SUPERSAMPLE = 4  # per axis, for anti-aliased mask edges


def _regular_polygon(u: np.ndarray, v: np.ndarray, sides: int) -> np.ndarray:
  """Inside a regular polygon of circumradius 1 with a vertex pointing up."""
  r, theta = np.hypot(u, v), np.arctan2(v, u)
  sector = 2 * math.pi / sides
  first_normal = math.pi / 2 + sector / 2  # edge normals sit halfway between vertices
  phi = (theta - first_normal + sector / 2) % sector - sector / 2  # angle to nearest normal
  return r * np.cos(phi) <= math.cos(math.pi / sides)


def _star(u: np.ndarray, v: np.ndarray, points: int = 5, inner: float = 0.42) -> np.ndarray:
  """Inside a star whose tips lie on the unit circle, one pointing up."""
  r, theta = np.hypot(u, v), np.arctan2(v, u)
  half = math.pi / points
  phi = np.abs((theta - math.pi / 2 + half) % (2 * half) - half)  # angle to nearest tip
  qx, qy = r * np.cos(phi), r * np.sin(phi)
  # The edge runs from the tip (1, 0) to the inner vertex; the centre is on its left.
  ix, iy = inner * math.cos(half), inner * math.sin(half)
  return (ix - 1) * qy - iy * (qx - 1) >= 0


# Inside tests in units of the radius, y pointing up, for every shape and clutter mark.
_INSIDE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    'circle': lambda u, v: np.hypot(u, v) <= 1,
    'square': lambda u, v: np.maximum(abs(u), abs(v)) <= 0.72,
    'triangle': lambda u, v: _regular_polygon(u, v + 0.25, 3),  # centred on its height
    'star': _star,
    'cross': (
        lambda u, v: (np.minimum(abs(u), abs(v)) <= 0.28) & (np.maximum(abs(u), abs(v)) <= 0.9)
    ),
    'ring': lambda u, v: (np.hypot(u, v) <= 1) & (np.hypot(u, v) >= 0.55),
    'diamond': lambda u, v: abs(u) / 0.65 + abs(v) <= 1,
    'hexagon': lambda u, v: _regular_polygon(u, v, 6),
    'pentagon': lambda u, v: _regular_polygon(u, v, 5),
    'crescent': lambda u, v: (np.hypot(u, v) <= 1) & (np.hypot(u - 0.45, v - 0.25) >= 0.8),
    'dot': lambda u, v: np.hypot(u, v) <= 1,
    'stroke': lambda u, v: (abs(v) <= 0.15) & (abs(u) <= 1),
}


@functools.lru_cache(maxsize=None)
def _mask(shape: str, diameter: int, angle: int) -> np.ndarray:
  """Anti-aliased coverage (n, n) in [0, 1] of a shape, n = diameter + 2 (a margin for the
  soft edge), rotated counter-clockwise by `angle` degrees."""
  n = diameter + 2
  ticks = (np.arange(n * _SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - n / 2
  cols, rows = np.meshgrid(ticks, ticks)
  x, y = cols / (diameter / 2), -rows / (diameter / 2)
  a = math.radians(angle)
  u, v = x * math.cos(a) + y * math.sin(a), -x * math.sin(a) + y * math.cos(a)
  inside = _INSIDE[shape](u, v).astype(np.float32)
  return inside.reshape(n, _SUPERSAMPLE, n, _SUPERSAMPLE).mean(axis=(1, 3))


# Rendering works on channel-first (3, S, S) float32 canvases: numpy broadcasts an RGB triple
# over a (S, S, 3) array with an inner loop of length 3, several times slower.


@functools.lru_cache(maxsize=None)
def _banks(image_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Fixed noise banks of side 4S: white pixel noise (3, 4S, 4S) and a smooth texture
  (4S, 4S), both of unit deviation; each image crops them at its own offsets. The legacy
  `RandomState` stream is frozen by numpy, so images do not change with the numpy version."""
  side, cell = 4 * image_size, max(image_size // 8, 2)
  rs = np.random.RandomState(0)
  pixel = rs.standard_normal((3, side, side)).astype(np.float32)
  coarse = rs.standard_normal((side // cell + 3, side // cell + 3))
  smooth = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)
  for _ in range(4):  # box blurs along alternating axes turn the blocks into soft blobs
    total = np.cumsum(smooth, axis=0)
    smooth = (total[cell:] - total[:-cell]).T
  smooth = smooth[:side, :side]
  return pixel, ((smooth - smooth.mean()) / smooth.std()).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _ramps(image_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Pixel-centre coordinates in [-0.5, 0.5] along x (1, S) and y (S, 1), for gradients."""
  ticks = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size - 0.5
  return ticks[None, :], ticks[:, None]


def render(scene: Scene) -> np.ndarray:
  """The scene as uint8 (S, S, 3): background, clutter, objects, then pixel noise."""
  size, ground = scene.image_size, scene.background
  pixel_bank, texture_bank = _banks(size)
  rgb = np.asarray(ground.rgb, np.float32)[:, None, None]
  if ground.kind == 'gradient':
    x, y = _ramps(size)
    c, s = math.cos(ground.angle), math.sin(ground.angle)
    t = x * (c / (abs(c) + abs(s))) + (y * (s / (abs(c) + abs(s))) + 0.5)  # 0..1 across
    canvas = t * (np.asarray(ground.rgb_end, np.float32)[:, None, None] - rgb)
    canvas += rgb
  else:
    canvas = np.empty((3, size, size), np.float32)
    canvas[:] = rgb
    if ground.kind == 'textured':
      top, left = ground.offset
      canvas += ground.texture * texture_bank[top : top + size, left : left + size]

  for mark in scene.clutter + scene.objects:  # clutter first: it never hides an object
    _stamp(canvas, mark)

  top, left = scene.noise_offset
  canvas += scene.noise * pixel_bank[:, top : top + size, left : left + size]
  np.clip(canvas, 0, 255, out=canvas)
  image = np.empty((size, size, 3), np.uint8)
  for channel, plane in enumerate(canvas):  # a plane at a time beats a transposing copy
    image[:, :, channel] = plane
  return image


def _stamp(canvas: np.ndarray, mark: Mark) -> None:
  """Blends a mark into a (3, S, S) canvas in place, cropping it at the image border."""
  alpha = _mask(mark.shape, mark.diameter, mark.angle)
  n, size = alpha.shape[0], canvas.shape[1]
  top, left = mark.y - n // 2, mark.x - n // 2
  t0, l0, t1, l1 = max(top, 0), max(left, 0), min(top + n, size), min(left + n, size)
  region = canvas[:, t0:t1, l0:l1]
  colour = np.asarray(mark.rgb, np.float32)[:, None, None]
  region += alpha[t0 - top : t1 - top, l0 - left : l1 - left] * (colour - region)


# ---------------------------------------------------------------------------------------------
# Captions.

# (requirement, template). Requirements: '' any scene; 'several' two or more objects; 'pair'
# two objects in a clear spatial relation; 'unique' an object whose shape occurs once.
_TEMPLATES: tuple[tuple[str, str], ...] = (
    ('', 'a photo of {objects}.'),
    ('', 'an image of {objects}.'),
    ('', 'a picture showing {objects}.'),
    ('', '{objects}.'),
    ('', '{groups} on {background}.'),
    ('', 'a drawing of {groups}.'),
    ('', '{background} with {groups}.'),
    ('', '{n_things}: {objects}.'),
    ('', 'there {are} {n_things} in the image.'),
    ('', 'a simple illustration of {one}.'),
    ('unique', 'the {named} is {colour}.'),
    ('several', '{one} and other {things}.'),
    ('several', 'an image with {n_things}, including {one}.'),
    ('several', 'from left to right: {left_to_right}.'),
    ('pair', '{a} {relation} {b}.'),
    ('pair', 'there is {a} {relation} {b}.'),
    ('pair', 'a photo of {a} {relation} {b}.'),
    ('pair', 'in this picture, {a} is {relation} {b}.'),
)


def write_caption(scene: Scene, rng: random.Random) -> str:
  return write_captions(scene, rng, 1)[0]


def write_captions(scene: Scene, rng: random.Random, count: int) -> list[str]:
  """`count` captions of one scene, each from a different template (so they differ)."""
  met = {'', 'several'} if len(scene.objects) > 1 else {''}
  met |= {'pair'} if scene.relations else set()
  met |= {'unique'} if scene.loners else set()
  templates = [text for need, text in _TEMPLATES if need in met]
  return [template.format_map(_Slots(scene, rng)) for template in rng.sample(templates, count)]


class _Slots:
  """The mapping `str.format_map` fills one caption's {slots} from: slot `x` is drawn by
  `_x()` when the template asks for it, so a caption draws only what it mentions. Picks that
  several slots share ({a} {relation} {b}; {named} and {colour}) are drawn once."""

  def __init__(self, scene: Scene, rng: random.Random):
    self.scene, self.rng = scene, rng

  def __getitem__(self, slot: str) -> str:
    return getattr(self, f'_{slot}')()

  @functools.cached_property
  def pair(self) -> tuple[int, str, int]:
    return _choice(self.rng, self.scene.relations)

  @functools.cached_property
  def subject(self) -> SceneObject:
    return _choice(self.rng, self.scene.loners)

  @functools.cached_property
  def thing_words(self) -> tuple[str, str]:
    """One noun for the objects per caption, singular and plural."""
    return _choice(self.rng, _THINGS)

  def _mention(self, obj: SceneObject) -> str:
    """'a small red circle on the left': the object with a random subset of its attributes."""
    rng = self.rng
    noun = _choice(rng, SHAPE_WORDS[obj.shape])
    words = [_choice(rng, SIZE_WORDS[obj.size])] if rng.random() < _P_SIZE else []
    if rng.random() < _P_COLOUR:
      colour = _choice(rng, COLOUR_WORDS[obj.colour])
      if rng.random() < 0.2:
        noun = f'{noun} in {colour}'
      else:
        words.append(colour)
    words.append(noun)
    if rng.random() < _P_REGION:
      words.append(_choice(rng, REGION_WORDS[obj.region(self.scene.image_size)]))
    return f'{self._determiner(obj, words[0])} {" ".join(words)}'

  def _determiner(self, obj: SceneObject, word: str) -> str:
    """'a' or 'an'; sometimes 'one' or 'a single' where that is also true of the shape."""
    u = self.rng.random() if obj in self.scene.loners else 1.0
    if u < 0.1:
      return 'one'
    if u < 0.2:
      return 'a single'
    return 'an' if word[0] in 'aeiou' else 'a'

  def _objects(self) -> str:
    objects = list(self.scene.objects)
    self.rng.shuffle(objects)
    return _join([self._mention(o) for o in objects])

  def _left_to_right(self) -> str:
    return _join([self._mention(o) for o in sorted(self.scene.objects, key=lambda o: o.x)])

  def _groups(self) -> str:
    """'two red circles and a star': objects counted by shape."""
    groups: dict[str, list[SceneObject]] = {}
    for obj in self.scene.objects:
      groups.setdefault(obj.shape, []).append(obj)
    phrases = []
    for shape, members in groups.items():
      if len(members) == 1:
        phrases.append(self._mention(members[0]))
        continue
      words = [NUMBERS[len(members) - 1]]
      if len({o.colour for o in members}) == 1 and self.rng.random() < _P_COLOUR:
        words.append(_choice(self.rng, COLOUR_WORDS[members[0].colour]))
      words.append(_plural(_choice(self.rng, SHAPE_WORDS[shape])))
      phrases.append(' '.join(words))
    self.rng.shuffle(phrases)
    return _join(phrases)

  def _one(self) -> str:
    return self._mention(_choice(self.rng, self.scene.objects))

  def _background(self) -> str:
    ground, rng = self.scene.background, self.rng
    words = [ground.tone] if rng.random() < 0.8 else []
    words += [_choice(rng, BACKGROUND_WORDS[ground.kind])] if rng.random() < 0.5 else []
    words.append('background')
    return f'{"an" if words[0][0] in "aeiou" else "a"} {" ".join(words)}'

  def _things(self) -> str:
    return self.thing_words[1]

  def _n_things(self) -> str:
    count = len(self.scene.objects)
    return f'{NUMBERS[count - 1]} {self.thing_words[count > 1]}'

  def _are(self) -> str:
    return 'are' if len(self.scene.objects) > 1 else 'is'

  def _named(self) -> str:
    """The subject, named by shape (and sometimes place); a lone object may be just 'the
    shape'."""
    if len(self.scene.objects) == 1 and self.rng.random() < 0.3:
      return self.thing_words[0]
    name = _choice(self.rng, SHAPE_WORDS[self.subject.shape])
    if self.rng.random() < 0.4:
      name += ' ' + _choice(self.rng, REGION_WORDS[self.subject.region(self.scene.image_size)])
    return name

  def _colour(self) -> str:
    return _choice(self.rng, COLOUR_WORDS[self.subject.colour])

  def _a(self) -> str:
    return self._mention(self.scene.objects[self.pair[0]])

  def _relation(self) -> str:
    return _choice(self.rng, RELATION_WORDS[self.pair[1]])

  def _b(self) -> str:
    return self._mention(self.scene.objects[self.pair[2]])


def _join(phrases: Sequence[str]) -> str:
  """'a', 'a and b', 'a, b and c'."""
  if len(phrases) == 1:
    return phrases[0]
  return f'{", ".join(phrases[:-1])} and {phrases[-1]}'


def _plural(noun: str) -> str:
  return noun + ('es' if noun.endswith(('s', 'x', 'sh', 'ch')) else 's')


# ---------------------------------------------------------------------------------------------
# Zero-shot prompts and the vocabulary.

_ZERO_SHOT_TEMPLATES: dict[str, tuple[str, ...]] = {
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

_WORD = re.compile(r'[a-z]+|[0-9]+|[^\sa-z0-9]')


def caption_words(text: str) -> list[str]:
  """The words of a text as the synthetic tokenizer splits it (lower-cased)."""
  return _WORD.findall(text.lower())


def _vocabulary() -> tuple[str, ...]:
  """Every word a caption or zero-shot prompt can contain, sorted."""
  texts = [re.sub(r'\{\w+\}', ' ', t) for _, t in _TEMPLATES]
  texts += [t.replace('{c}', ' ') for ts in _ZERO_SHOT_TEMPLATES.values() for t in ts]
  tables = (SHAPE_WORDS, COLOUR_WORDS, SIZE_WORDS, REGION_WORDS, RELATION_WORDS, BACKGROUND_WORDS)
  texts += [word for table in tables for words in table.values() for word in words]
  texts += [_plural(w) for words in SHAPE_WORDS.values() for w in words]
  texts += [*TONES, *NUMBERS, *(w for pair in _THINGS for w in pair)]
  texts += ['a an single in and background is are ,']  # _mention, _join, _background, _are
  return tuple(sorted({word for text in texts for word in caption_words(text)}))


VOCABULARY: tuple[str, ...] = _vocabulary()


# ---------------------------------------------------------------------------------------------
# Sources.


class _SceneSource:
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


class SyntheticWorld(_SceneSource):
  """Image-caption pairs for pre-training ('train') or validation loss ('val')."""

  SPLITS = ('train', 'val')

  def __init__(
      self, seed: int = 0, image_size: int = 64, split: str = 'train', size: int = 2**31 - 1
  ):
    if split not in self.SPLITS:
      raise ValueError(f'Unknown split {split!r}; valid splits are {self.SPLITS}.')
    super().__init__(split, seed, image_size, size)


class ZeroShotSource(_SceneSource):
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
          _randint(rng, 1, MAX_OBJECTS),
          shape=_choice(rng, SHAPES),
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
      for name, templates in _ZERO_SHOT_TEMPLATES.items()
  ]


class RetrievalSource(_SceneSource):
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
