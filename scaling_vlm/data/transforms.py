"""Per-sample image transforms: decode, train and eval crops, normalisation.

Everything here runs on the host in grain workers, on uint8 (H, W, 3) RGB arrays;
normalisation to CLIP's mean/std happens on the device (`normalize`), so the host sends 4x
fewer bytes.

Evaluation (`eval_transform`) gives exactly open_clip's pixels, so that our scores and open_clip's
are of the same images: Pillow decodes the whole image and resizes it as torchvision does. The
training path (`decode`, `random_resized_crop`) trades that for speed (2.5x): libjpeg-turbo
(simplejpeg) decodes JPEGs with DCT-domain downscaling and OpenCV resizes.
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
  """Training decoder: uint8 RGB (H, W, 3) from encoded bytes or an array. A JPEG larger than
  needed decodes at a reduced DCT scale that keeps both sides >= `size_hint`, and libjpeg-turbo
  is strict: a truncated file is an error rather than a grey patch. Raises ValueError or
  OSError on corrupt or truncated data."""
  if isinstance(image, np.ndarray):
    return image
  if image[:2] == b'\xff\xd8':  # JPEG
    return simplejpeg.decode_jpeg(image, 'RGB', min_height=size_hint, min_width=size_hint)
  with Image.open(io.BytesIO(image)) as pil:
    return np.asarray(pil.convert('RGB'))


def random_resized_crop(pixels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
  """Training transform: torchvision's RandomResizedCrop, a random box (see `random_crop_box`)
  resized to size x size. It differs from open_clip's in its pixels, not its distribution:
  the box is drawn by numpy, not torch; OpenCV resizes with its bicubic kernel (a = -0.75,
  no antialiasing) or, when shrinking 2x or more, area averaging, where Pillow uses an
  antialiased bicubic (a = -0.5); and `decode` may have shrunk a large JPEG in the DCT domain.
  """
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


def eval_transform(image: bytes | np.ndarray, size: int) -> np.ndarray:
  """open_clip's evaluation transform, `image_transform(size, is_train=False)`, short of its
  normalisation (`normalize`, on the device): uint8 (size, size, 3), pixel for pixel.

  Encoded bytes decode whole with Pillow (DCT-domain downscaling would change the pixels) and
  convert to RGB before the resize, as open_clip's loaders do (webdataset's 'pilrgb',
  torchvision's ImageFolder). Raises ValueError or OSError on corrupt or truncated data."""
  if isinstance(image, np.ndarray):
    return center_crop(image, size)
  with Image.open(io.BytesIO(image)) as pil:
    return _resize_short_side_and_crop(pil.convert('RGB'), size)


def center_crop(pixels: np.ndarray, size: int) -> np.ndarray:
  """`eval_transform` of uint8 (H, W, 3) pixels: the short side resized to `size`, then the
  central size x size square."""
  if pixels.shape[:2] == (size, size):
    # Already the size (the synthetic world renders at the model's): torchvision's Resize and
    # CenterCrop both return such an image unchanged.
    return np.ascontiguousarray(pixels)
  return _resize_short_side_and_crop(Image.fromarray(pixels), size)


def _resize_short_side_and_crop(image: Image.Image, size: int) -> np.ndarray:
  """torchvision's Resize(size) and CenterCrop(size) of a PIL image, rounding included."""
  width, height = image.size
  # Resize(int): the short side becomes `size`, the long side is truncated, not rounded.
  long_side = int(size * max(width, height) / min(width, height))
  new_size = (size, long_side) if width <= height else (long_side, size)
  if new_size != image.size:  # as torchvision, which returns the image itself
    image = image.resize(new_size, Image.Resampling.BICUBIC)  # antialiased when shrinking
  # CenterCrop's offsets use Python's round, which rounds halves to even: 1.5 -> 2, 0.5 -> 0.
  left = int(round((new_size[0] - size) / 2.0))
  top = int(round((new_size[1] - size) / 2.0))
  return np.asarray(image.crop((left, top, left + size, top + size)))


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
