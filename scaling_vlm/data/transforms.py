"""Per-sample image transforms (open_clip's): decode, train and eval crops, normalisation.

Everything here runs on the host in grain workers, on uint8 images; normalisation to CLIP's
mean/std happens on the device (`normalize`), so the host sends 4x fewer bytes.
"""

from __future__ import annotations

import io
import math

import jax.numpy as jnp
import numpy as np
from PIL import Image

# OpenAI CLIP's normalisation, used by open_clip for every model in the paper.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# open_clip's RandomResizedCrop for these runs: scale (0.9, 1.0), torchvision's ratio range.
CROP_SCALE = (0.9, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def to_pil(image: bytes | np.ndarray, size_hint: int) -> Image.Image:
  """An RGB PIL image from encoded bytes or a uint8 array. For JPEGs, `draft` lets libjpeg
  decode at a reduced scale that is still at least `size_hint` on the short side: a large
  photo destined for 224 px decodes several times faster."""
  if isinstance(image, np.ndarray):
    return Image.fromarray(image)
  pil = Image.open(io.BytesIO(image))
  pil.draft('RGB', (size_hint, size_hint))
  return pil.convert('RGB')


def random_resized_crop(image: Image.Image, size: int, rng: np.random.Generator) -> np.ndarray:
  """torchvision's RandomResizedCrop: a random box (see `random_crop_box`) resized (bicubic)
  to size x size."""
  return _resize_box(image, size, random_crop_box(*image.size, rng))


def random_crop_box(
    width: int,
    height: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
) -> tuple[int, int, int, int]:
  """A box of `scale` of the area and `ratio` aspect at a random place; after 10 failed
  draws, the largest centred box whose aspect lies within `ratio` (torchvision's rule)."""
  area = width * height
  for _ in range(10):
    target = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
    w = round(math.sqrt(target * aspect))
    h = round(math.sqrt(target / aspect))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return left, top, left + w, top + h
  aspect = width / height
  if aspect < ratio[0]:
    w, h = width, round(width / ratio[0])
  elif aspect > ratio[1]:
    w, h = round(height * ratio[1]), height
  else:
    w, h = width, height
  left, top = (width - w) // 2, (height - h) // 2
  return left, top, left + w, top + h


def center_crop(image: Image.Image, size: int) -> np.ndarray:
  """Eval transform: resize the short side to `size` (bicubic), then crop the centre."""
  width, height = image.size
  side = min(width, height)
  left, top = (width - side) // 2, (height - side) // 2
  return _resize_box(image, size, (left, top, left + side, top + side))


def _resize_box(image: Image.Image, size: int, box: tuple[int, int, int, int]) -> np.ndarray:
  if image.size == (size, size) and box == (0, 0, size, size):
    return np.asarray(image)
  return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC, box=box))


def normalize(images: jnp.ndarray, dtype=jnp.float32) -> jnp.ndarray:
  """uint8 (..., 3) images -> CLIP-normalised floats; runs on the device."""
  mean = jnp.asarray(CLIP_MEAN, dtype) * 255
  std = jnp.asarray(CLIP_STD, dtype) * 255
  return (images.astype(dtype) - mean) / std
