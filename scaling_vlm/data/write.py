"""Writes records into numbered shards, webdataset tars or ArrayRecord files; and its CLI.

    python -m scaling_vlm.data.write --input 'wds:data/{00000..00099}.tar' --output ar/ \
        --format arrayrecord
    python -m scaling_vlm.data.write --input folder:images/ --captions captions.csv \
        --output wds/ --format wds --image-format jpg
    python -m scaling_vlm.data.write --input synthetic:10000 --output synth/ --format wds

Tars hold `KEY.jpg`, `KEY.txt` and `KEY.json` members exactly as img2dataset writes them,
so both this repository's readers and other webdataset tools read them. Encoded images are
written as they are (no re-encoding loss), decoded ones are encoded with PIL. Records that
cannot be written (an error from their source, no image, an unreadable image) are skipped,
counted by reason and reported, never dropped silently.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from scaling_vlm.data.arrayrecord import ArrayRecordSource, write_arrayrecord
from scaling_vlm.data.shards import PIL_FORMATS, SHARD_SUFFIXES, encode_image, image_extension
from scaling_vlm.data.wds import WdsSource, write_wds

log = logging.getLogger(__name__)

SUFFIXES = {'wds': '.tar', 'arrayrecord': '.array_record'}
INPUTS = 'wds:PATTERN, arrayrecord:PATTERN, folder:DIR (with --captions FILE) or synthetic:N'


class ShardWriter:
  """Collects records into shards of `shard_size` and writes each one when it is full.

  `paths`, `written` and `skipped` (a Counter of reasons) say what happened; use it as a
  context manager, or call `close()` to write the last, partial shard.
  """

  def __init__(
      self,
      out_dir: str,
      *,
      fmt: str,
      shard_size: int = 1000,
      image_format: str = 'jpg',
      quality: int = 95,
  ):
    if fmt not in SUFFIXES:
      raise ValueError(f'format {fmt!r} is not one of {sorted(SUFFIXES)}')
    if image_format not in PIL_FORMATS:
      raise ValueError(f'image format {image_format!r} is not one of {sorted(PIL_FORMATS)}')
    if shard_size < 1:
      raise ValueError(f'shard size {shard_size} must be at least 1')
    # Old shards left beside new ones would be read as part of the new dataset.
    if os.path.isdir(out_dir) and any(
        name.endswith(SHARD_SUFFIXES) for name in os.listdir(out_dir)
    ):
      raise FileExistsError(f'output folder {out_dir} already holds shards; give an empty one')
    os.makedirs(out_dir, exist_ok=True)
    self.out_dir, self.fmt, self.shard_size = out_dir, fmt, shard_size
    self.image_format, self.quality = image_format, quality
    self.paths: list[str] = []
    self.written = 0
    self.skipped: Counter[str] = Counter()
    self._pending: list[Any] = []
    self._keys: set[str] = set()

  def add(self, record: dict[str, Any]) -> None:
    """Queues one record for the current shard, or counts why it cannot be written."""
    reason = self._queue(record)
    if reason is not None:
      self.skipped[reason] += 1
      return
    self.written += 1
    if len(self._pending) == self.shard_size:
      self._flush()

  def _queue(self, record: dict[str, Any]) -> str | None:
    if record.get('error'):
      return record['error']
    image, key = record.get('image'), str(record['key'])
    if isinstance(image, np.ndarray):
      image, extension = encode_image(image, self.image_format, self.quality), self.image_format
    elif isinstance(image, bytes):
      try:
        extension = image_extension(image)
      except OSError:  # PIL.UnidentifiedImageError
        return 'unreadable image'
    else:
      return 'missing image'
    if key in self._keys:  # tar members of two records with one key would merge
      return 'duplicate key'
    json_meta = record.get('json') or {}
    if self.fmt == 'arrayrecord':
      item = {**record, 'key': key, 'image': image, 'json': json_meta}
    elif record.get('label') is not None or record.get('captions') is not None:
      raise ValueError(
          f"record {key!r} has a 'label' or 'captions', which img2dataset-style tars do not"
          ' hold; write it with --format arrayrecord'
      )
    elif record.get('caption') is None:
      return 'missing caption'
    else:
      txt, meta = record['caption'].encode('utf-8'), json.dumps(json_meta).encode('utf-8')
      item = (key, {extension: image, 'txt': txt, 'json': meta})
    self._keys.add(key)
    self._pending.append(item)
    return None

  def _flush(self) -> None:
    path = os.path.join(self.out_dir, f'{len(self.paths):05d}{SUFFIXES[self.fmt]}')
    if self.fmt == 'wds':
      write_wds(self._pending, path)
    else:
      write_arrayrecord(self._pending, path)
    self.paths.append(path)
    self._pending, self._keys = [], set()

  def close(self) -> list[str]:
    if self._pending:
      self._flush()
    return self.paths

  def __enter__(self) -> ShardWriter:
    return self

  def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
    if exc_type is None:  # after an error, a last partial shard would hide that it failed
      self.close()

  def summary(self) -> str:
    line = (
        f'wrote {self.written} records in {len(self.paths)} {self.fmt} shards to'
        f' {self.out_dir}; skipped {sum(self.skipped.values())}'
    )
    reasons = ', '.join(f'{reason}: {n}' for reason, n in self.skipped.most_common())
    return f'{line} ({reasons})' if reasons else line


def write_shards(
    records: Iterable[dict[str, Any]],
    out_dir: str,
    *,
    fmt: str,
    shard_size: int = 1000,
    image_format: str = 'jpg',
    quality: int = 95,
) -> list[str]:
  """Writes records into `out_dir`/00000.tar, ... (or .array_record); returns the paths."""
  with ShardWriter(
      out_dir, fmt=fmt, shard_size=shard_size, image_format=image_format, quality=quality
  ) as writer:
    for record in records:
      writer.add(record)
  if writer.skipped:
    log.warning(writer.summary())
  return writer.paths


def _read_captions(path: str) -> list[dict[str, Any]]:
  """Rows of a captions file: a CSV with columns filename,caption or a JSONL with those keys."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'captions file {path!r} does not exist')
  with open(path, newline='', encoding='utf-8') as file:
    if path.endswith('.csv'):
      rows = list(csv.DictReader(file))
    elif path.endswith('.jsonl'):
      rows = [json.loads(line) for line in file if line.strip()]
    else:
      raise ValueError(
          f'captions file {path!r} must be a .csv (columns filename,caption) or a .jsonl'
          ' (keys filename, caption)'
      )
  for number, row in enumerate(rows, 1):
    if not isinstance(row, dict) or not {'filename', 'caption'} <= row.keys():
      raise ValueError(f'captions file {path!r}, row {number}: needs a filename and a caption')
  return rows


def _folder_records(folder: str, captions: str | None) -> Iterator[dict[str, Any]]:
  if captions is None:
    raise ValueError(f'input folder:{folder} needs --captions FILE (a .csv or .jsonl)')
  rows = _read_captions(captions)
  absent = [
      row['filename'] for row in rows if not os.path.isfile(os.path.join(folder, row['filename']))
  ]
  if absent:
    raise FileNotFoundError(
        f'{len(absent)} images listed in {captions} are not in {folder}, e.g. {absent[:3]}'
    )

  def records() -> Iterator[dict[str, Any]]:
    for i, row in enumerate(rows):
      with open(os.path.join(folder, row['filename']), 'rb') as file:
        image = file.read()
      extra = {name: value for name, value in row.items() if name != 'caption'}
      yield {
          'key': f'{i:09d}',  # numbered as img2dataset does; the file name goes in json
          'shard': captions,
          'image': image,
          'caption': row['caption'],
          'error': None,
          'json': extra,
      }

  return records()


def _synthetic_records(count: str, seed: int, image_size: int) -> Iterator[dict[str, Any]]:
  if not count.isdigit() or int(count) < 1:
    raise ValueError(f'input synthetic:{count}: N must be a positive whole number of records')
  # Imported here so that converting files works without the synthetic world's module.
  from scaling_vlm.data.synthetic import SyntheticWorld

  return itertools.islice(iter(SyntheticWorld(seed=seed, image_size=image_size)), int(count))


def _source_records(source: WdsSource | ArrayRecordSource) -> Iterator[dict[str, Any]]:
  return (source[i] for i in range(len(source)))


def records_from(
    spec: str, *, captions: str | None = None, seed: int = 0, image_size: int = 64
) -> Iterator[dict[str, Any]]:
  """The records an `--input` spec names; a bad spec raises here, before anything is written."""
  scheme, colon, value = spec.partition(':')
  if not colon or not value:
    raise ValueError(f'input {spec!r} must be one of {INPUTS}')
  if captions is not None and scheme != 'folder':
    raise ValueError(f'--captions only applies to folder:DIR input, not {spec!r}')
  if scheme == 'wds':
    return _source_records(WdsSource(value))
  if scheme == 'arrayrecord':
    return _source_records(ArrayRecordSource(value))
  if scheme == 'folder':
    return _folder_records(value, captions)
  if scheme == 'synthetic':
    return _synthetic_records(value, seed, image_size)
  raise ValueError(f'input scheme {scheme!r} (in {spec!r}) is not one of: {INPUTS}')


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--input', required=True, help=INPUTS)
  parser.add_argument('--output', required=True, help='folder for 00000.tar, ... (new or empty)')
  parser.add_argument('--format', required=True, choices=sorted(SUFFIXES))
  parser.add_argument('--captions', help='for folder: input, a .csv or .jsonl of filename,caption')
  parser.add_argument('--shard-size', type=int, default=1000)
  parser.add_argument(
      '--image-format',
      choices=sorted(PIL_FORMATS),
      default='jpg',
      help='how decoded images are encoded; encoded ones are kept as they are',
  )
  parser.add_argument('--quality', type=int, default=95)
  parser.add_argument('--seed', type=int, default=0, help='for synthetic: input')
  parser.add_argument('--image-size', type=int, default=64, help='for synthetic: input')
  args = parser.parse_args(argv)
  try:
    records = records_from(
        args.input, captions=args.captions, seed=args.seed, image_size=args.image_size
    )
    writer = ShardWriter(
        args.output,
        fmt=args.format,
        shard_size=args.shard_size,
        image_format=args.image_format,
        quality=args.quality,
    )
  except (ValueError, OSError) as error:
    parser.error(str(error))
  with writer:
    for record in records:
      writer.add(record)
  print(writer.summary())


if __name__ == '__main__':
  main()
