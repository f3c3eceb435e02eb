"""Webdataset tar shards, as img2dataset writes them, read in place with random access.

A shard `00000.tar` holds members `KEY.jpg` (or .jpeg/.png/.webp), `KEY.txt` and `KEY.json`
for each record. Grain wants random access, a tar offers only a stream, so on first open each
shard gets a small index: every key's (offset, size) of its image, caption and json members,
found by walking the tar headers without reading the data. The index is cached as JSON:

    {"format": "scaling_vlm.wds_index/1", "shard": "/abs/00000.tar", "size": 1234,
     "mtime_ns": 1700000000000000000, "damage": null, "dropped_key": null,
     "records": [{"key": "000000000", "image": [1536, 5213], "txt": [7680, 31],
                  "json": [8704, 412]}, ...]}

next to the shard (`00000.tar.index.json`), or in a cache folder under a name hashed from the
shard's absolute path, size and mtime. A shard whose size or mtime changed is indexed again.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import hashlib
import io
import json
import logging
import os
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, SupportsIndex

import numpy as np

from scaling_vlm.data.shards import expand_shards

log = logging.getLogger(__name__)

INDEX_FORMAT = 'scaling_vlm.wds_index/1'
IMAGE_EXTENSIONS = frozenset({'jpg', 'jpeg', 'png', 'webp'})
MEMBERS = ('image', 'txt', 'json')  # the columns of a shard's span table
DEFAULT_CACHE_DIR = os.path.join(
    os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')), 'scaling_vlm', 'wds_index'
)


def _key_and_kind(name: str) -> tuple[str, str | None]:
  """A member's key (up to its basename's first dot, as in webdataset) and MEMBERS kind."""
  folder, _, base = name.rpartition('/')
  stem, _, extension = base.partition('.')
  key = f'{folder}/{stem}' if folder else stem
  extension = extension.lower()
  if extension in IMAGE_EXTENSIONS:
    return key, 'image'
  return key, extension if extension in ('txt', 'json') else None


def build_index(path: str) -> dict[str, Any]:
  """Walks a shard's tar headers (not its data) into the index described above.

  A damaged tar (cut short, or garbage where a header should be) keeps the records read
  before the damage.
  """
  stat = os.stat(path)
  records: dict[str, dict[str, list[int]]] = {}
  damage = None
  last_key = None
  with open(path, 'rb') as file:
    try:
      with tarfile.open(fileobj=file, mode='r:') as tar:
        for info in tar:
          if not info.isfile():
            continue
          last_key, kind = _key_and_kind(info.name)
          if info.offset_data + info.size > stat.st_size:
            damage = f'member {info.name} is cut off'
            break
          members = records.setdefault(last_key, {})
          if kind is not None:
            members.setdefault(kind, [info.offset_data, info.size])
        end = tar.offset
      if damage is None:
        file.seek(end)
        if file.read(tarfile.BLOCKSIZE) != tarfile.NUL * tarfile.BLOCKSIZE:
          damage = f'no valid header or end-of-archive marker at byte {end}'
    except tarfile.TarError as error:
      damage = f'unreadable tar: {error}'
  # Members of the key being read when the damage struck may be lost: it stays a record only
  # if its image and caption were read whole (then at most its json is gone).
  dropped_key = None
  if damage is not None and last_key is not None:
    if not {'image', 'txt'} <= records.get(last_key, {}).keys():
      dropped_key = last_key
      records.pop(last_key, None)
  return {
      'format': INDEX_FORMAT,
      'shard': os.path.abspath(path),
      'size': stat.st_size,
      'mtime_ns': stat.st_mtime_ns,
      'damage': damage,
      'dropped_key': dropped_key,
      'records': [{'key': key, **members} for key, members in records.items()],
  }


def _writable(folder: str) -> bool:
  return os.access(folder, os.W_OK)


def _cache_path(path: str, cache_dir: str) -> str:
  stat = os.stat(path)
  identity = f'{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}'
  digest = hashlib.sha1(identity.encode()).hexdigest()
  return os.path.join(cache_dir, f'{os.path.basename(path)}-{digest}.index.json')


def _read_cached(index_path: str, path: str) -> dict[str, Any] | None:
  """The cached index if it exists and still describes the shard as it is now."""
  try:
    with open(index_path) as file:
      index = json.load(file)
  except (OSError, ValueError):
    return None
  stat = os.stat(path)
  current = (INDEX_FORMAT, stat.st_size, stat.st_mtime_ns)
  return (
      index if (index.get('format'), index.get('size'), index.get('mtime_ns')) == current else None
  )


def _write_atomically(index: dict[str, Any], index_path: str) -> None:
  """Writes through a temporary file, so that concurrent readers never see half an index."""
  os.makedirs(os.path.dirname(index_path), exist_ok=True)
  tmp_path = f'{index_path}.{os.getpid()}.{threading.get_ident()}.tmp'
  with open(tmp_path, 'w') as file:
    json.dump(index, file, separators=(',', ':'))
  os.replace(tmp_path, index_path)


def load_index(path: str, cache_dir: str | None = None) -> dict[str, Any]:
  """A shard's index: from next to it, else from the cache folder, else built and cached."""
  beside = f'{path}.index.json'
  cached = _cache_path(path, cache_dir or DEFAULT_CACHE_DIR)
  index = _read_cached(beside, path) or _read_cached(cached, path)
  if index is not None:
    return index
  index = build_index(path)
  use_beside = cache_dir is None and _writable(os.path.dirname(os.path.abspath(path)))
  index_path = beside if use_beside else cached
  try:
    _write_atomically(index, index_path)
  except OSError as error:
    log.warning(
        'could not cache the index of %s at %s (%s); it is rebuilt on every open',
        path,
        index_path,
        error,
    )
  return index


def _spans(records: list[dict[str, Any]]) -> np.ndarray:
  """The (records, member, offset/size) table; -1 where a key lacks the member."""
  spans = np.full((len(records), len(MEMBERS), 2), -1, np.int64)
  for i, record in enumerate(records):
    for j, kind in enumerate(MEMBERS):
      if kind in record:
        spans[i, j] = record[kind]
  return spans


class WdsSource:
  """Records of webdataset tar shards by global index: a grain RandomAccessDataSource.

  Bad data is never dropped silently. A missing shard and a damaged one are logged, listed in
  `stats` and contribute no records (a damaged one: those before the damage); a key without
  an image or caption member is a record with `error` set. With `strict=True` each of these
  raises instead, when the source is built.
  """

  def __init__(
      self, shards: str | Sequence[str], *, cache_dir: str | None = None, strict: bool = False
  ):
    paths = expand_shards(shards)
    self.strict = strict
    self.stats: dict[str, Any] = {
        'shards': len(paths),
        'records': 0,
        'missing_shards': [],
        'truncated_shards': [],
        'record_errors': Counter(),
    }
    present = []
    for path in paths:
      if os.path.exists(path):
        present.append(path)
      else:
        self._bad_shard('missing_shards', path, 'shard file is missing', FileNotFoundError)
    if not present:
      raise FileNotFoundError(f'none of the {len(paths)} shards exists, e.g. {paths[0]}')
    with concurrent.futures.ThreadPoolExecutor(min(32, len(present))) as pool:
      indexes = list(pool.map(lambda path: load_index(path, cache_dir), present))
    self._shards: list[str] = []
    self._keys: list[list[str]] = []
    self._spans: list[np.ndarray] = []
    for path, index in zip(present, indexes):
      self._add_shard(path, index)
    self._ends = np.cumsum([len(keys) for keys in self._keys]).tolist()
    self.stats['records'] = self._ends[-1] if self._ends else 0
    self._fds: dict[int, int] = {}
    self._lock = threading.Lock()

  def _bad_shard(self, kind: str, path: str, why: str, error: type[Exception]) -> None:
    if self.strict:
      raise error(f'{path}: {why}')
    log.warning('%s: %s', path, why)
    self.stats[kind].append(path)

  def _add_shard(self, path: str, index: dict[str, Any]) -> None:
    if index['damage'] is not None:
      dropped = index['dropped_key']
      why = f"{index['damage']}; kept the {len(index['records'])} records before it" + (
          f', dropped the cut record {dropped!r}' if dropped is not None else ''
      )
      self._bad_shard('truncated_shards', path, why, ValueError)
    spans = _spans(index['records'])
    no_image, no_caption = spans[:, 0, 0] < 0, spans[:, 1, 0] < 0
    if self.strict and (no_image | no_caption).any():
      row = int(np.argmax(no_image | no_caption))
      what = 'an image' if no_image[row] else 'a caption (.txt)'
      raise ValueError(f"{path}: key {index['records'][row]['key']!r} has no {what} member")
    # A record has one error: one lacking both members counts as 'missing image'.
    for reason, rows in (('missing image', no_image), ('missing caption', no_caption & ~no_image)):
      if rows.any():
        first = index['records'][int(np.argmax(rows))]['key']
        log.warning('%s: %d keys have %s, e.g. %r', path, rows.sum(), reason, first)
        self.stats['record_errors'][reason] += int(rows.sum())
    if len(spans):
      self._shards.append(path)
      self._keys.append([record['key'] for record in index['records']])
      self._spans.append(spans)

  def __len__(self) -> int:
    return self.stats['records']

  def __getitem__(self, record_key: SupportsIndex) -> dict[str, Any]:
    i = record_key.__index__()
    if not 0 <= i < len(self):
      raise IndexError(f'record {i} is out of range for {len(self)} records')
    shard = bisect.bisect_right(self._ends, i)
    row = i - (self._ends[shard - 1] if shard else 0)
    image, caption, meta = (self._read(shard, span) for span in self._spans[shard][row])
    record = {
        'key': self._keys[shard][row],
        'shard': self._shards[shard],
        'image': image,
        'caption': None,
        'error': (
            'missing image' if image is None else 'missing caption' if caption is None else None
        ),
    }
    try:
      if caption is not None:
        record['caption'] = caption.decode('utf-8').strip()
      if meta is not None:
        record['json'] = json.loads(meta)
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
      record['error'] = record['error'] or f'unreadable member: {error}'
    return record

  def _read(self, shard: int, span: np.ndarray) -> bytes | None:
    """One member's bytes; `pread` keeps a descriptor shareable between threads."""
    offset, size = span.tolist()
    if offset < 0:
      return None
    fd = self._fds.get(shard)
    if fd is None:
      with self._lock:
        fd = self._fds.get(shard)
        if fd is None:
          fd = self._fds[shard] = os.open(self._shards[shard], os.O_RDONLY)
    data = os.pread(fd, size, offset)
    if len(data) != size:
      raise OSError(f'{self._shards[shard]} changed since it was indexed: short read at {offset}')
    return data

  def __getstate__(self) -> dict[str, Any]:
    # File descriptors and locks belong to one process; each process opens its own.
    return {k: v for k, v in self.__dict__.items() if k not in ('_fds', '_lock')}

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state)
    self._fds = {}
    self._lock = threading.Lock()

  def __del__(self) -> None:
    for fd in getattr(self, '_fds', {}).values():
      os.close(fd)

  def __repr__(self) -> str:
    # Grain checkpoints compare sources by repr; a hash keeps it short for many shards.
    digest = hashlib.sha1('\n'.join(self._shards).encode()).hexdigest()
    return f'WdsSource(shards={len(self._shards)}, records={len(self)}, hash_of_paths={digest})'


def write_wds(samples: Iterable[tuple[str, dict[str, bytes]]], path: str) -> int:
  """Writes (key, {extension: bytes}) samples as members `KEY.EXTENSION` of one tar shard.

  Members are written as img2dataset's webdataset writer does (sorted by extension, mode
  0444), through a temporary file so that a crash never leaves a half shard under the name.
  Returns the number of samples.
  """
  tmp_path = f'{path}.tmp'
  count = 0
  with tarfile.open(tmp_path, 'w') as tar:
    for key, members in samples:
      for extension in sorted(members):
        data = members[extension]
        info = tarfile.TarInfo(f'{key}.{extension}')
        info.size, info.mode, info.mtime = len(data), 0o444, time.time()
        tar.addfile(info, io.BytesIO(data))
      count += 1
  os.replace(tmp_path, path)
  return count
