"""ArrayRecord shards: grain's native random-access format, one msgpack map per record.

Each record is stored as {'key', 'image' (encoded bytes), 'caption', 'error'} plus whichever
of 'json', 'label' and 'captions' it has; 'shard' is not stored but set on reading to the file
it came from, so shards can be moved. Files are written with group size 1, which grain needs
to read single records fast.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any, SupportsIndex

import grain
import msgpack
import numpy as np
from array_record.python import array_record_module

from scaling_vlm.data.shards import encode_image, expand_shards

log = logging.getLogger(__name__)

OPTIONAL_FIELDS = ('json', 'label', 'captions')


def _pack(record: dict[str, Any], image_format: str, quality: int) -> bytes:
  image = record.get('image')
  if isinstance(image, np.ndarray):
    image = encode_image(image, image_format, quality)
  stored = {
      'key': str(record['key']),
      'image': image,
      'caption': record.get('caption'),
      'error': record.get('error'),
  }
  for field in OPTIONAL_FIELDS:
    if record.get(field) is not None:
      stored[field] = record[field]
  if 'label' in stored:
    stored['label'] = int(stored['label'])  # numpy integers are no msgpack type
  return msgpack.packb(stored, use_bin_type=True)


def write_arrayrecord(
    records: Iterable[dict[str, Any]], path: str, *, image_format: str = 'png', quality: int = 95
) -> int:
  """Writes records to one ArrayRecord file; returns how many.

  Encoded images are stored as they are; decoded (np.ndarray) ones are encoded as
  `image_format`, by default PNG, which is lossless. The file is written under a temporary
  name and renamed, so a crash never leaves half a shard under the real name.
  """
  tmp_path = f'{path}.tmp'
  writer = array_record_module.ArrayRecordWriter(tmp_path, 'group_size:1')
  count = 0
  try:
    for record in records:
      writer.write(_pack(record, image_format, quality))
      count += 1
  finally:
    writer.close()
  os.replace(tmp_path, path)
  return count


def _count(path: str) -> int | None:
  """Records in a file, or None when its footer index is unreadable (cut short, not ours)."""
  reader = array_record_module.ArrayRecordReader(path)
  try:
    return reader.num_records() if reader.ok() else None
  finally:
    reader.close()


class ArrayRecordSource:
  """Records of ArrayRecord shards by global index: a grain RandomAccessDataSource.

  A missing or unreadable shard is logged, listed in `stats` ('missing_shards',
  'truncated_shards') and contributes no records; with `strict=True` it raises instead.
  """

  def __init__(self, shards: str | Sequence[str], *, strict: bool = False):
    paths = expand_shards(shards)
    self.stats: dict[str, Any] = {
        'shards': len(paths),
        'records': 0,
        'missing_shards': [],
        'truncated_shards': [],
    }
    present = []
    for path in paths:
      if not os.path.exists(path):
        if strict:
          raise FileNotFoundError(f'{path}: shard file is missing')
        log.warning('%s: shard file is missing', path)
        self.stats['missing_shards'].append(path)
      else:
        present.append(path)
    if not present:
      raise FileNotFoundError(f'none of the {len(paths)} shards exists, e.g. {paths[0]}')
    with concurrent.futures.ThreadPoolExecutor(min(32, len(present))) as pool:
      counts = list(pool.map(_count, present))
    self._shards, sizes = [], []
    for path, count in zip(present, counts):
      if count is None:
        if strict:
          raise ValueError(f'{path}: not a readable ArrayRecord file (cut short or corrupt)')
        log.warning('%s: not a readable ArrayRecord file (cut short or corrupt)', path)
        self.stats['truncated_shards'].append(path)
      elif count:
        self._shards.append(path)
        sizes.append(count)
    self._ends = np.cumsum(sizes).tolist()
    self.stats['records'] = self._ends[-1] if self._ends else 0
    # Slices ('path[0:n]') spare grain from opening every file again to count its records.
    slices = [f'{path}[0:{size}]' for path, size in zip(self._shards, sizes)]
    self._source = grain.sources.ArrayRecordDataSource(slices) if slices else None

  def __len__(self) -> int:
    return self.stats['records']

  def __getitem__(self, record_key: SupportsIndex) -> dict[str, Any]:
    i = record_key.__index__()
    if not 0 <= i < len(self):
      raise IndexError(f'record {i} is out of range for {len(self)} records')
    record = msgpack.unpackb(self._source[i], raw=False)
    record['shard'] = self._shards[bisect.bisect_right(self._ends, i)]
    return record

  def __repr__(self) -> str:
    # Grain checkpoints compare sources by repr; a hash keeps it short for many shards.
    digest = hashlib.sha1('\n'.join(self._shards).encode()).hexdigest()
    return (
        f'ArrayRecordSource(shards={len(self._shards)}, records={len(self)},'
        f' hash_of_paths={digest})'
    )
