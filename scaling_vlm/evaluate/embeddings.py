"""Batched, jitted image and text embeddings: what every evaluation task is computed from.

Batches are padded to a fixed size so that each model compiles one image program and one
text program, whatever the number of records or prompts. Inside `jax.set_mesh(mesh)` each
batch is split over the mesh's batch axes (`to_device`), so a multi-device host evaluates in
parallel; batch sizes are rounded up to whole rows per batch shard (`whole_rows`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling_vlm import sharding
from scaling_vlm.data import transforms

Tokenizer = Callable[[Sequence[str]], np.ndarray]
DECODE_THREADS = min(16, os.cpu_count() or 1)
# Evaluation sets up to this size (decoded, cropped pixels) are held in memory for a run:
# MS-COCO 5k at 224 px is 0.75 GB and fits; ImageNet's 50k validation images (7.5 GB) stream.
PRELOAD_BYTES = 2 << 30


# Pure functions of the split model (graphdef static): nnx.jit would traverse the model's
# graph on every batch, which costs more than a tiny model's forward pass.
@functools.partial(jax.jit, static_argnums=0)
def _encode_text(graphdef, state, tokens):
  return nnx.merge(graphdef, state).encode_text(tokens)


@functools.partial(jax.jit, static_argnums=0)
def _encode_image(graphdef, state, images):
  return nnx.merge(graphdef, state).encode_image(transforms.normalize(images))


def to_device(batch: np.ndarray) -> jax.Array:
  """A host batch on the device(s): split over the data axes of the mesh set by
  `jax.set_mesh`, if any."""
  mesh = jax.sharding.get_mesh()
  if mesh.empty:
    return jnp.asarray(batch)
  return jax.device_put(batch, sharding.batch_sharding(mesh, batch.ndim))


def whole_rows(batch_size: int) -> int:
  """`batch_size` rounded up to a multiple of the batch shards (data x fsdp) of the mesh set
  by `jax.set_mesh`, so that every device gets whole rows."""
  mesh = jax.sharding.get_mesh()
  shards = 1 if mesh.empty else math.prod(mesh.shape.get(a, 1) for a in sharding.BATCH_AXES)
  return -(-batch_size // shards) * shards


def pad_rows(batch: np.ndarray, size: int) -> np.ndarray:
  """`batch` with its last row repeated up to `size` rows."""
  return np.concatenate([batch, np.repeat(batch[-1:], size - len(batch), 0)])


def eval_image(record: dict[str, Any], image_size: int) -> np.ndarray:
  """A record's image as open_clip's eval transform makes it (`transforms.eval_transform`). A
  record a reader flagged, or bytes that do not decode, raise an error naming the record."""
  if record.get('error'):
    raise ValueError(f"record {record.get('key')!r}: {record['error']}")
  try:
    return transforms.eval_transform(record['image'], image_size)
  except (ValueError, OSError) as error:
    raise ValueError(f"record {record.get('key')!r}: undecodable image ({error})") from error


class Preloaded:
  """A source's records with their images decoded and centre-cropped once, in memory.

  Every checkpoint of a run is scored on the same images, so reading and decoding them (or,
  for the synthetic world, rendering them) once per run instead of once per checkpoint is
  most of an evaluation's cost saved. A record whose image does not decode is an error here,
  naming the record, as it would be at every checkpoint."""

  def __init__(self, source, image_size: int):
    if not len(source):
      raise ValueError(f'{source!r} holds no records')
    # One batch of every record: the same threaded read and decode as a streamed evaluation.
    records, self.images = next(_batches(source, image_size, len(source)))  # (N, S, S, 3) uint8
    self.records = [{k: v for k, v in r.items() if k != 'image'} for r in records]
    self._repr = f'Preloaded({source!r})'

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self.records[index] | {'image': self.images[index]}

  def __repr__(self) -> str:
    return self._repr


def preload(source, image_size: int):
  """`source` as a `Preloaded` one if its cropped images fit in `PRELOAD_BYTES`, else itself."""
  if isinstance(source, Preloaded) or len(source) * image_size**2 * 3 > PRELOAD_BYTES:
    return source
  return Preloaded(source, image_size)


def _batches(source, image_size: int, batch_size: int):
  """(records, (n, size, size, 3) images) in order, `batch_size` at a time. Reading and
  decoding run in threads (file reads and Pillow's decoders and resize release the GIL)."""
  if isinstance(source, Preloaded):
    for start in range(0, len(source), batch_size):
      yield source.records[start : start + batch_size], source.images[start : start + batch_size]
    return

  def load(index: int) -> tuple[dict[str, Any], np.ndarray]:
    record = source[index]
    return record, eval_image(record, image_size)

  with concurrent.futures.ThreadPoolExecutor(DECODE_THREADS) as pool:
    for start in range(0, len(source), batch_size):
      loaded = list(pool.map(load, range(start, min(start + batch_size, len(source)))))
      yield [record for record, _ in loaded], np.stack([image for _, image in loaded])


def image_embeddings(
    model, source, image_size: int, fields: Iterable[str] = (), batch_size: int = 256
) -> tuple[np.ndarray, dict[str, list]]:
  """Unit-norm (N, embed) embeddings of every record of `source` in order, and the values of
  each of `fields` per record (labels, captions).

  Batch i + 1 is prepared while the device still encodes batch i: dispatch is asynchronous
  and batch i's embeddings are fetched only afterwards."""
  embeddings, values = [], {field: [] for field in fields}
  batch_size = whole_rows(batch_size)
  graphdef, state = nnx.split(model)  # once, not a graph traversal per batch
  in_flight = None  # (device embeddings, rows) of the batch being encoded
  for records, images in _batches(source, image_size, batch_size):
    out = _encode_image(graphdef, state, to_device(pad_rows(images, batch_size)))
    if in_flight is not None:
      embeddings.append(np.asarray(in_flight[0])[: in_flight[1]])
    in_flight = (out, len(records))
    for field, column in values.items():
      column += [record[field] for record in records]
  if in_flight is None:
    raise ValueError(f'{source!r} holds no records')
  embeddings.append(np.asarray(in_flight[0])[: in_flight[1]])
  return np.concatenate(embeddings), values


def text_embeddings(
    model, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 256
) -> np.ndarray:
  """Unit-norm (N, embed) embeddings of `texts`, in order."""
  out, batch_size = [], whole_rows(batch_size)
  graphdef, state = nnx.split(model)
  for start in range(0, len(texts), batch_size):
    tokens = tokenizer(list(texts[start : start + batch_size]))
    batch = _encode_text(graphdef, state, to_device(pad_rows(tokens, batch_size)))
    out.append(np.asarray(batch)[: len(tokens)])
  return np.concatenate(out)
