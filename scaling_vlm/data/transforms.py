"""Per-sample image transforms (open_clip's): decode, train and eval crops, normalisation.

Everything here runs on the host in grain workers, on uint8 (H, W, 3) RGB arrays;
normalisation to CLIP's mean/std happens on the device (`normalize`), so the host sends 4x
fewer bytes. JPEGs decode with libjpeg-turbo (simplejpeg: strict, so a truncated file is an
error rather than a grey patch, and DCT-domain downscaling for large photos) and crops resize
with OpenCV: together about 3x faster than PIL, which handles the other formats.
"""

from __future__ import annotations

import io
import math

import cv2
import jax.numpy as jnp
import numpy as np
import simplejpeg
from PIL import Image

# Parallelism comes from grain's workers; a resize must not also spawn threads per call.
cv2.setNumThreads(1)

# OpenAI CLIP's normalisation, used by open_clip for every model in the paper.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# open_clip's RandomResizedCrop for these runs: scale (0.9, 1.0), torchvision's ratio range.
CROP_SCALE = (0.9, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def decode(image: bytes | np.ndarray, size_hint: int) -> np.ndarray:
  """uint8 RGB (H, W, 3) from encoded bytes or an array. A JPEG larger than needed decodes
  at a reduced DCT scale that keeps both sides >= `size_hint`. Raises ValueError or OSError
  on corrupt or truncated data."""
  if isinstance(image, np.ndarray):
    return image
  if image[:2] == b'\xff\xd8':  # JPEG
    return simplejpeg.decode_jpeg(image, 'RGB', min_height=size_hint, min_width=size_hint)
  with Image.open(io.BytesIO(image)) as pil:
    return np.asarray(pil.convert('RGB'))


def random_resized_crop(pixels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
  """torchvision's RandomResizedCrop: a random box (see `random_crop_box`) resized to
  size x size."""
  height, width = pixels.shape[:2]
  return _resize_box(pixels, size, random_crop_box(width, height, rng))


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
  log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
  # All draws at once: a numpy call costs more than the arithmetic of a small image's crop.
  for u_scale, u_aspect, u_top, u_left in rng.random((10, 4)).tolist():
    target = area * (scale[0] + (scale[1] - scale[0]) * u_scale)
    aspect = math.exp(log_low + (log_high - log_low) * u_aspect)
    w = round(math.sqrt(target * aspect))
    h = round(math.sqrt(target / aspect))
    if 0 < w <= width and 0 < h <= height:
      top = int(u_top * (height - h + 1))
      left = int(u_left * (width - w + 1))
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


def center_crop(pixels: np.ndarray, size: int) -> np.ndarray:
  """Eval transform: the central square, resized to size x size (open_clip's resize of the
  short side followed by a centre crop)."""
  height, width = pixels.shape[:2]
  side = min(width, height)
  left, top = (width - side) // 2, (height - side) // 2
  return _resize_box(pixels, size, (left, top, left + side, top + side))


def _resize_box(pixels: np.ndarray, size: int, box: tuple[int, int, int, int]) -> np.ndarray:
  left, top, right, bottom = box
  crop = pixels[top:bottom, left:right]
  if crop.shape[:2] == (size, size):
    return np.ascontiguousarray(crop)
  # Bicubic as open_clip; area averaging when shrinking 2x or more, where bicubic aliases.
  shrink = min(crop.shape[0], crop.shape[1]) >= 2 * size
  interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
  return cv2.resize(crop, (size, size), interpolation=interpolation)


def normalize(images: jnp.ndarray, dtype=jnp.float32) -> jnp.ndarray:
  """uint8 (..., 3) images -> CLIP-normalised floats; runs on the device."""
  mean = jnp.asarray(CLIP_MEAN, dtype) * 255
  std = jnp.asarray(CLIP_STD, dtype) * 255
  return (images.astype(dtype) - mean) / std
