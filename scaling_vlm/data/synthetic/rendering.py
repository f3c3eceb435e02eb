"""Rendering: a `Scene` painted as uint8 pixels, anti-aliased, with texture and pixel noise."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from scaling_vlm.data.synthetic.scenes import Mark, Scene

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
