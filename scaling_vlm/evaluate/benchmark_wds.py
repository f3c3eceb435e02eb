"""Evaluation sets in clip_benchmark's webdataset layout, the one LAION's 35-task suite uses.

A dataset folder holds tar shards (in the folder itself or in a split sub-folder such as
`test/`) and, for classification, `classnames.txt` (one name per line, line i = label i) and
`zeroshot_classification_templates.txt` (one template per line, `{c}` where the name goes);
a dataset of the suite named as clip_benchmark does (`imagenet-o`, `gtsrb`, ...) falls back to
the carried names and templates (`classnames`) where the folder lacks these files.
A record is `KEY.webp|jpg|jpeg|png` plus `KEY.cls` (the integer label) for classification,
or plus `KEY.txt` (several captions, one per line) for retrieval.

The training reader (`data.wds.WdsSource`) indexes only image, txt and json members; here
members are indexed by extension, by walking the tar headers once, and read lazily.
"""

from __future__ import annotations

import os
import tarfile
from typing import Any

from scaling_vlm.data import shards, synthetic
from scaling_vlm.data.wds import IMAGE_EXTENSIONS
from scaling_vlm.evaluate import classnames

CLASSNAMES_FILE = 'classnames.txt'
TEMPLATES_FILE = 'zeroshot_classification_templates.txt'


class MemberSource:
  """Random-access records of tar shards that have an image and a `text_ext` member.

  Records are `{'key', 'image', text_ext: str}`, image bytes read when the record is."""

  def __init__(self, folder: str, text_ext: str, split: str = 'test'):
    split_folder = os.path.join(folder, split)
    paths = shards.expand_shards(split_folder if os.path.isdir(split_folder) else folder)
    self.folder, self.text_ext = folder, text_ext
    self._records: list[tuple[str, str, tuple[int, int], bytes]] = []
    for path in paths:
      self._index(path)
    if not self._records:
      raise ValueError(f'{folder}: no record has both an image and a .{text_ext} member')

  def _index(self, path: str) -> None:
    members: dict[str, dict[str, Any]] = {}
    with tarfile.open(path, 'r:') as tar:
      for info in tar:
        if not info.isfile():
          continue
        folder, _, base = info.name.rpartition('/')
        stem, _, ext = base.partition('.')
        key, ext = f'{folder}/{stem}' if folder else stem, ext.lower()
        if ext in IMAGE_EXTENSIONS:
          members.setdefault(key, {})['image'] = (info.offset_data, info.size)
        elif ext == self.text_ext:  # small: read now, so labels can be checked up front
          members.setdefault(key, {})['text'] = tar.extractfile(info).read()
    for key, member in members.items():
      if {'image', 'text'} <= member.keys():
        self._records.append((path, key, member['image'], member['text']))

  def __len__(self) -> int:
    return len(self._records)

  def texts(self) -> list[str]:
    return [text.decode('utf-8') for *_, text in self._records]

  def __getitem__(self, index: int) -> dict[str, Any]:
    path, key, (offset, size), text = self._records[index]
    with open(path, 'rb') as file:
      file.seek(offset)
      image = file.read(size)
    return {'key': key, 'image': image, self.text_ext: text.decode('utf-8')}

  def __repr__(self) -> str:
    return f'MemberSource({self.folder!r}, .{self.text_ext}, {len(self)} records)'


class _View:
  """A MemberSource whose records gain a field parsed from their text member."""

  def __init__(self, members: MemberSource):
    self.members = members

  def __len__(self) -> int:
    return len(self.members)

  def __repr__(self) -> str:
    return repr(self.members)


class _Labelled(_View):
  """Records carry 'label', the integer in their .cls member."""

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self.members[index]
    return record | {'label': int(record['cls'])}


class _Captioned(_View):
  """Records carry 'captions': the non-empty lines of their .txt member."""

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self.members[index]
    return record | {
        'captions': [line.strip() for line in record['txt'].splitlines() if line.strip()]
    }


def read_lines(path: str) -> tuple[str, ...]:
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} is missing (clip_benchmark layout)')
  with open(path) as file:
    return tuple(line.strip() for line in file if line.strip())


def _lines_or_carried(name: str, path: str, carried) -> tuple[str, ...]:
  """The file's lines; the carried ones for a dataset of the suite whose folder lacks it."""
  if not os.path.exists(path) and name in classnames.names():
    return carried(name)
  return read_lines(path)


def zero_shot_task(name: str, folder: str) -> synthetic.ZeroShotTask:
  """A classification dataset folder as a zero-shot task, its labels checked against the
  class names before any image is read."""
  names = _lines_or_carried(name, os.path.join(folder, CLASSNAMES_FILE), classnames.classnames)
  templates = _lines_or_carried(name, os.path.join(folder, TEMPLATES_FILE), classnames.templates)
  members = MemberSource(folder, 'cls')
  labels = sorted({int(text) for text in members.texts()})
  if labels[0] < 0 or labels[-1] >= len(names):
    raise ValueError(
        f'{folder}: labels run {labels[0]}..{labels[-1]} but there are {len(names)} class'
        ' names; the class-name file does not belong to these shards'
    )
  return synthetic.ZeroShotTask(name, names, templates, _Labelled(members))


def retrieval_source(folder: str) -> _Captioned:
  """A retrieval dataset folder (MS-COCO 5k style) as records with 'captions'."""
  return _Captioned(MemberSource(folder, 'txt'))
