"""Shard files on disk: which paths a spec names, and the encoded images they hold.

A spec is what a config or a command line says (`data/{00000..00099}.tar`, a glob, a folder);
sources get the list of paths. A path that does not exist stays in the list: sources count
and log missing shards (an img2dataset range with a few failed shards is normal), so only a
spec that names nothing at all is an error here.
"""

from __future__ import annotations

import glob
import io
import os
from collections.abc import Sequence

import braceexpand
import numpy as np
from PIL import Image

SHARD_SUFFIXES = ('.tar', '.array_record')
GLOB_CHARS = frozenset('*?[')

# PIL's format names for the image formats the writers produce, by file extension.
PIL_FORMATS = {'jpg': 'JPEG', 'png': 'PNG', 'webp': 'WEBP'}


def _split_commas(spec: str) -> list[str]:
  """Splits on commas outside braces, so `a.tar,{b,c}.tar` is two patterns, not three."""
  parts, depth, start = [], 0, 0
  for i, char in enumerate(spec):
    depth += {'{': 1, '}': -1}.get(char, 0)
    if char == ',' and depth == 0:
      parts.append(spec[start:i])
      start = i + 1
  parts.append(spec[start:])
  return [part.strip() for part in parts if part.strip()]


def _expand_one(pattern: str) -> list[str]:
  paths = []
  for path in braceexpand.braceexpand(os.path.expanduser(pattern)):
    if os.path.isdir(path):
      names = sorted(name for name in os.listdir(path) if name.endswith(SHARD_SUFFIXES))
      paths.extend(os.path.join(path, name) for name in names)
    elif GLOB_CHARS & set(path):
      paths.extend(sorted(glob.glob(path)))
    else:
      paths.append(path)
  return paths


def expand_shards(spec: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
  """The shard paths a spec names, in order.

  `spec` is a list of paths or patterns, or one string holding comma-separated ones; each is
  a brace pattern (`{00000..00099}`), a glob, a folder (its `*.tar` and `*.array_record`
  files, sorted) or a plain path (kept even if it does not exist).
  """
  if isinstance(spec, (str, os.PathLike)):
    patterns = _split_commas(os.fspath(spec))
  else:
    patterns = [os.fspath(pattern) for pattern in spec]
  paths = [path for pattern in patterns for path in _expand_one(pattern)]
  if not paths:
    raise ValueError(
        f'shard spec {spec!r} names no files: give paths, a comma-separated list, a brace'
        ' pattern (data/{00000..00099}.tar), a glob, or a folder holding *.tar or'
        ' *.array_record files'
    )
  return paths


def check_shards(spec) -> None:
  """Refuses a spec that names nothing on disk (a typo, a disk not mounted), before a run
  builds anything; some missing shards among many are the sources' business."""
  paths = expand_shards(spec)
  if not any(os.path.exists(path) for path in paths):
    shown = ', '.join(paths[:3]) + (f', ... ({len(paths)} in all)' if len(paths) > 3 else '')
    raise ValueError(f'data.shards={spec!r} names {shown}, and none of them exists.')


def encode_image(image: np.ndarray, image_format: str = 'png', quality: int = 95) -> bytes:
  """Encodes a decoded uint8 image as `image_format` ('jpg', 'png' or 'webp')."""
  if image_format not in PIL_FORMATS:
    raise ValueError(f'image format {image_format!r} is not one of {sorted(PIL_FORMATS)}')
  buffer = io.BytesIO()
  options = {} if image_format == 'png' else {'quality': quality}
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, PIL_FORMATS[image_format], **options)
  return buffer.getvalue()


def image_extension(data: bytes) -> str:
  """The file extension of encoded image bytes ('jpg', 'png', ...), read from their header.

  Raises PIL.UnidentifiedImageError when the bytes are no image PIL knows.
  """
  image_format = Image.open(io.BytesIO(data)).format
  return {'JPEG': 'jpg'}.get(image_format, image_format.lower())
