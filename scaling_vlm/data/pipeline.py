"""The grain pipeline: records -> host batches -> global `jax.Array`s on the mesh.

    source -> global shuffle (reseeded every epoch) -> this host's slice -> decode, crop,
    tokenize (grain workers) -> skip and count bad records -> host batch -> global array

Every random choice is a function of (seed, position in the stream), so two pipelines with
one seed give identical batches whatever the number of workers, and the iterator state
(grain's position plus our counters) restores mid-epoch to continue sample for sample.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
from typing import Any, Callable

import grain
import jax
from absl import flags
import numpy as np
from jax.sharding import Mesh
from PIL import Image

from scaling_vlm import sharding
from scaling_vlm.data import transforms

log = logging.getLogger(__name__)

Tokenizer = Callable[[str], np.ndarray]  # text -> (1, context_length) int32

# Bad records are logged one by one up to this many, then every LOG_EVERY-th.
LOG_FIRST, LOG_EVERY = 20, 1000


class DataError(RuntimeError):
  """The data is unusable: a bad record in strict mode, or too many bad records."""


@dataclasses.dataclass(frozen=True)
class BadRecord:
  """Stands in for a record that could not be used, so the main process can count it."""

  shard: str
  key: str
  reason: str


def preprocess(
    record: dict, rng: np.random.Generator, *, image_size: int, tokenizer: Tokenizer, train: bool
) -> dict | BadRecord:
  """Decode + crop + tokenize one record; any failure (a missing or undecodable image, a
  missing, empty or untokenizable caption) becomes a `BadRecord`."""
  shard, key = str(record.get('shard', '?')), str(record.get('key', '?'))
  if record.get('error'):
    return BadRecord(shard, key, record['error'])
  if record.get('image') is None:
    return BadRecord(shard, key, 'missing image')
  if record.get('caption') is None:
    return BadRecord(shard, key, 'missing caption')
  try:
    if train:
      image = transforms.decode(record['image'], image_size)
      pixels = transforms.random_resized_crop(image, image_size, rng)
    else:
      pixels = transforms.eval_transform(record['image'], image_size)
  # What decoders raise on corrupt data, and PIL on an image too large to be a real one.
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
    return BadRecord(shard, key, f'undecodable image ({type(error).__name__}: {error})')
  # An empty caption pairs the image with no text: nothing to learn, so it is a bad record. A
  # caption longer than the context is cut to fit, ending in EOT, and trained on (open_clip).
  if not str(record['caption']).strip():
    return BadRecord(shard, key, 'empty caption')
  try:
    tokens = tokenizer(record['caption'])[0]
  except (ValueError, KeyError, TypeError, UnicodeError) as error:  # e.g. an unknown word
    return BadRecord(shard, key, f'untokenizable caption ({type(error).__name__}: {error})')
  return {'images': pixels, 'tokens': tokens, 'keys': key}


class HostBatches(grain.DatasetIterator):
  """Stacks this host's batches from preprocessed elements, skipping bad records.

  A bad record is counted by reason, logged with its shard and key, and in strict mode (or
  once bad records exceed `max_bad_fraction` of at least `min_records` seen) stops the run.
  The counters are part of the iterator state, so they survive a resume.
  """

  def __init__(
      self,
      parent: grain.DatasetIterator,
      batch_size: int,
      *,
      strict: bool = False,
      max_bad_fraction: float = 0.01,
      min_records: int = 1000,
  ):
    super().__init__(parent)
    self.batch_size = batch_size
    self.strict, self.max_bad_fraction, self.min_records = strict, max_bad_fraction, min_records
    self.good = 0
    self.bad: collections.Counter[str] = collections.Counter()

  def __next__(self) -> dict[str, np.ndarray]:
    elements = []
    while len(elements) < self.batch_size:
      element = next(self._parent)
      if isinstance(element, BadRecord):
        self._count_bad(element)
      else:
        self.good += 1
        elements.append(element)
    batch = {key: np.stack([e[key] for e in elements]) for key in elements[0]}
    # The counts so far travel with the batch, so whoever consumes it (past any prefetch
    # buffer) sees the counts as of that batch.
    batch['bad_records'] = dict(self.bad)
    return batch

  def _count_bad(self, record: BadRecord) -> None:
    reason = record.reason.split(' (')[0]  # group 'undecodable image (...)' by kind
    self.bad[reason] += 1
    total_bad = sum(self.bad.values())
    message = f'bad record {record.shard}:{record.key}: {record.reason}'
    if self.strict:
      raise DataError(f'{message} (strict mode; set data.strict=False to skip and count).')
    if total_bad <= LOG_FIRST or total_bad % LOG_EVERY == 0:
      log.warning('%s (skipped; %d bad so far)', message, total_bad)
    seen = total_bad + self.good
    if seen >= self.min_records and total_bad > self.max_bad_fraction * seen:
      raise DataError(
          f'{total_bad} of {seen} records were bad ({dict(self.bad)}), more than '
          f'max_bad_fraction={self.max_bad_fraction}; last: {message}.'
      )

  def get_state(self) -> dict[str, Any]:
    return {'parent': self._parent.get_state(), 'good': self.good, 'bad': dict(self.bad)}

  def set_state(self, state: dict[str, Any]) -> None:
    self._parent.set_state(state['parent'])
    self.good = state['good']
    self.bad = collections.Counter(state['bad'])


def host_batches(
    source,
    *,
    tokenizer: Tokenizer,
    image_size: int,
    global_batch: int,
    seed: int,
    train: bool = True,
    num_workers: int = 0,
    strict: bool = False,
    max_bad_fraction: float = 0.01,
    min_records: int = 1000,
    read_threads: int = 4,
    prefetch: int = 2,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.DatasetIterator:
  """This host's share of every global batch, as numpy arrays ('images' uint8, 'tokens',
  'keys') plus the bad-record counts so far ('bad_records'). Training streams repeat forever,
  reshuffled each epoch; eval streams run once in order (a final partial batch is dropped:
  evaluation pads its own batches). `read_threads` threads per process read and decode
  (decoders release the GIL); `prefetch` batches are stacked in a background thread while
  the devices compute. The iterator state counts only what was consumed."""
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if global_batch % process_count:
    raise ValueError(
        f'global batch {global_batch} is not divisible by the {process_count} processes.'
    )
  dataset = grain.MapDataset.source(source)
  if train:
    dataset = dataset.shuffle(seed=seed).repeat()  # repeat() reseeds the shuffle every epoch
  transform = functools.partial(preprocess, image_size=image_size, tokenizer=tokenizer, train=train)
  # Augmentation randomness is keyed by the position in the *global* stream (random_map before
  # slicing), so a sample is cropped the same way however many hosts share the work.
  dataset = dataset.random_map(transform, seed=seed)
  # Host h reads stream positions h, h + P, h + 2P, ...: disjoint, and together everything.
  # A small read-ahead buffer: grain scans it on every element, so 500 (its default) costs
  # more than the decoding it hides.
  read_options = grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=8 * read_threads)
  elements = dataset[process_index::process_count].to_iter_dataset(read_options)
  if num_workers:
    if not flags.FLAGS.is_parsed():
      # grain reads absl flags when it starts workers. Parsing them is the entry point's
      # business (an absl app does it), not a library's.
      raise RuntimeError(
          f'num_workers={num_workers}: grain worker processes read absl flags, which nobody '
          'parsed; run from an absl app (python -m scaling_vlm.train) or call '
          'absl.flags.FLAGS.mark_as_parsed() in your entry point first.'
      )
    elements = elements.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  batches = _HostBatchDataset(
      elements,
      global_batch // process_count,
      strict=strict,
      max_bad_fraction=max_bad_fraction,
      min_records=min_records,
  )
  if prefetch:
    batches = grain.experimental.ThreadPrefetchIterDataset(batches, prefetch_buffer_size=prefetch)
  return iter(batches)


class _HostBatchDataset(grain.IterDataset):
  """`HostBatches` as a dataset, so that grain's thread prefetch can wrap it."""

  def __init__(self, parent: grain.IterDataset, batch_size: int, **options):
    super().__init__(parent)
    self.batch_size, self.options = batch_size, options

  def __iter__(self) -> HostBatches:
    return HostBatches(self._parent.__iter__(), self.batch_size, **self.options)


class Batches:
  """Global batches on the mesh for the trainer, with an exact position in the stream.

  Images arrive as uint8 and are normalised on the devices. Checkpoints store `host` (its
  state continues sample for sample); `samples_seen` starts where that state left off.
  """

  def __init__(
      self,
      host: grain.DatasetIterator,
      mesh: Mesh,
      global_batch: int,
      dataset_size: int,
      samples_seen: int = 0,
  ):
    self.host, self.mesh = host, mesh
    self.global_batch, self.dataset_size = global_batch, dataset_size
    self.samples_seen = samples_seen
    self.bad_records: dict[str, int] = {}
    self._normalize = jax.jit(transforms.normalize)

  def __iter__(self) -> Batches:
    return self

  def __next__(self) -> dict[str, jax.Array]:
    local = next(self.host)
    self.bad_records = local['bad_records']
    batch = {
        key: jax.make_array_from_process_local_data(
            sharding.batch_sharding(self.mesh, local[key].ndim), local[key]
        )
        for key in ('images', 'tokens')
    }
    batch['images'] = self._normalize(batch['images'])
    self.samples_seen += self.global_batch
    return batch

  @property
  def epoch(self) -> float:
    """Passes over the source so far (fractional)."""
    return self.samples_seen / self.dataset_size

  def metrics(self) -> dict[str, float]:
    metrics = {'data/samples_seen': self.samples_seen, 'data/epoch': self.epoch}
    metrics.update({f'data/bad_records/{k}': v for k, v in self.bad_records.items()})
    return metrics
