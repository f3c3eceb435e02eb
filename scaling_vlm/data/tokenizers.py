"""Caption tokenizers: the OpenAI CLIP BPE for real data, a word-list tokenizer for the synthetic
world.

Both share the project's id convention (`TextConfig`): 0 pads, `vocab_size - 2` starts a text
and `vocab_size - 1` ends it, so CLIP can pool at `argmax(tokens)`. A batch row is
`[SOT, *ids, EOT, 0, ...]`; a text that does not fit is cut so that EOT is still its last token,
as in open_clip. Tokenizers run inside grain worker processes, so they pickle, and they never
download anything: the BPE merges file must already be on disk.
"""

from __future__ import annotations

import functools
import gzip
import html
import os
import re
from typing import Sequence

import ftfy
import numpy as np
import regex

# open_clip's `SimpleTokenizer` keeps the first 49152 - 256 - 2 merges of the 16e6 file, which
# makes a vocabulary of exactly 49408 ids (256 bytes, 256 end-of-word bytes, merges, SOT, EOT).
_MAX_MERGES = 49152 - 256 - 2
# CLIP pre-tokenisation: English contractions, letter runs, single digits, punctuation runs.
# Unlike open_clip's it does not match the literal strings '<start_of_text>' / '<end_of_text>'
# (see `ClipTokenizer`), so a caption cannot smuggle special tokens in.
_CLIP_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE
)
_WORD_PATTERN = re.compile(r'[a-z]+|[0-9]+|[^\sa-z0-9]')
_END_OF_WORD = '</w>'
# Web captions have a long tail of rare words; a bounded cache keeps long-lived workers small
# while still catching the frequent words that make up most tokens.
_BPE_CACHE_SIZE = 1 << 17


def _bytes_to_unicode() -> dict[int, str]:
  """A reversible map from each byte to a printable character, in CLIP's vocabulary order.

  Printable Latin-1 bytes map to themselves and come first; the other 68 bytes (controls,
  space, soft hyphen) map to the characters from U+0100 on, so BPE never sees whitespace or
  control characters and every byte string has a printable spelling.
  """
  printable = [
      *range(ord('!'), ord('~') + 1),
      *range(ord('¡'), ord('¬') + 1),
      *range(ord('®'), ord('ÿ') + 1),
  ]
  others = [b for b in range(256) if b not in printable]
  mapping = {b: chr(b) for b in printable}
  mapping.update({b: chr(256 + i) for i, b in enumerate(others)})
  return mapping


def _clean(text: str) -> str:
  """open_clip's default 'lower' clean-up: repair mojibake, unescape HTML (twice, for
  double-escaped scrapes), collapse whitespace, lower-case."""
  text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
  return ' '.join(text.split()).lower()  # str.split's whitespace, as open_clip's


def _frame(ids: Sequence[int], sot: int, eot: int, context_length: int) -> list[int]:
  """`[SOT, *ids, EOT]`, cut to `context_length` with EOT kept as the last token."""
  tokens = [sot, *ids, eot]
  if len(tokens) > context_length:
    tokens = tokens[:context_length]
    tokens[-1] = eot
  return tokens


def _content(ids: Sequence[int], sot: int, eot: int, pad: int) -> list[int]:
  """The text tokens of an encoded or framed sequence: SOT dropped, everything from the first
  EOT on dropped (generation pads after EOT), trailing pad dropped."""
  ids = [int(i) for i in ids]
  if eot in ids:
    ids = ids[: ids.index(eot)]
  ids = [i for i in ids if i != sot]
  while ids and ids[-1] == pad:
    ids.pop()
  return ids


class _Tokenizer:
  """What both tokenizers share: the id convention and batching."""

  def __init__(self, vocab_size: int, context_length: int):
    if context_length < 2:
      raise ValueError(f'context_length must be >= 2 to hold SOT and EOT, got {context_length}')
    self._vocab_size = vocab_size
    self._context_length = context_length

  @property
  def vocab_size(self) -> int:
    return self._vocab_size

  @property
  def sot_id(self) -> int:
    return self._vocab_size - 2

  @property
  def eot_id(self) -> int:
    return self._vocab_size - 1

  @property
  def pad_id(self) -> int:
    return 0

  @property
  def context_length(self) -> int:
    return self._context_length

  def encode(self, text: str) -> list[int]:
    raise NotImplementedError

  def __call__(self, texts: str | Sequence[str]) -> np.ndarray:
    """int32 (N, context_length): one `[SOT, *ids, EOT]` row per text, zero padded."""
    if isinstance(texts, str):
      texts = [texts]
    out = np.zeros((len(texts), self._context_length), np.int32)
    for row, text in zip(out, texts):
      tokens = _frame(self.encode(text), self.sot_id, self.eot_id, self._context_length)
      row[: len(tokens)] = tokens
    return out


class ClipTokenizer(_Tokenizer):
  """The OpenAI CLIP byte-level BPE, with the ids and text clean-up of open_clip's
  `SimpleTokenizer`: its rows equal `open_clip.tokenize(texts, context_length)` for every text
  but one kind (tests/test_open_clip_preprocessing.py). A caption holding the literal text
  '<start_of_text>' or '<end_of_text>' (any case, also once HTML-unescaped) gets the ids of that
  text here, where open_clip would emit the special SOT or EOT id in the middle of the row.

  Args:
    bpe_path: the merges file in the format of `bpe_simple_vocab_16e6.txt.gz` (gzip text, a
      version header line, then one space-separated merge per line in rank order).
    context_length: length of the rows `__call__` returns.
  """

  def __init__(self, bpe_path: str | os.PathLike, context_length: int = 77):
    bpe_path = os.fspath(bpe_path)
    if not os.path.isfile(bpe_path):
      raise FileNotFoundError(
          f'CLIP BPE merges file not found: {bpe_path!r}. Nothing is downloaded at run time; '
          'copy bpe_simple_vocab_16e6.txt.gz there from the open_clip package '
          '(open_clip/bpe_simple_vocab_16e6.txt.gz) or from the OpenAI CLIP repository '
          '(clip/bpe_simple_vocab_16e6.txt.gz).'
      )
    with gzip.open(bpe_path, 'rt', encoding='utf-8') as f:
      lines = f.read().split('\n')[1 : _MAX_MERGES + 1]
    merges = [tuple(line.split()) for line in lines if line.strip()]

    self._byte_encoder = _bytes_to_unicode()
    self._byte_decoder = {c: b for b, c in self._byte_encoder.items()}
    byte_chars = list(self._byte_encoder.values())
    self._decoder = [
        *byte_chars,
        *(c + _END_OF_WORD for c in byte_chars),
        *(''.join(m) for m in merges),
    ]
    self._encoder = {token: i for i, token in enumerate(self._decoder)}
    self._ranks = {m: i for i, m in enumerate(merges)}
    super().__init__(len(self._decoder) + 2, context_length)
    self._make_cache()

  def _make_cache(self) -> None:
    self._word_ids = functools.lru_cache(maxsize=_BPE_CACHE_SIZE)(self._bpe)

  # The cache wraps a bound method, which does not pickle; workers start with an empty one.
  def __getstate__(self) -> dict:
    state = self.__dict__.copy()
    del state['_word_ids']
    return state

  def __setstate__(self, state: dict) -> None:
    self.__dict__.update(state)
    self._make_cache()

  def _bpe(self, word: str) -> tuple[int, ...]:
    """Ids of one pre-token (already in byte characters): merge the lowest-ranked adjacent pair
    everywhere it occurs, until no adjacent pair is a merge."""
    parts = [*word[:-1], word[-1] + _END_OF_WORD]
    while len(parts) > 1:
      pairs = set(zip(parts, parts[1:]))
      best = min(pairs, key=lambda p: self._ranks.get(p, float('inf')))
      if best not in self._ranks:
        break
      merged, i = [], 0
      while i < len(parts):
        if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
          merged.append(parts[i] + parts[i + 1])
          i += 2
        else:
          merged.append(parts[i])
          i += 1
      parts = merged
    return tuple(self._encoder[p] for p in parts)

  def encode(self, text: str) -> list[int]:
    """Token ids of `text` after clean-up, without SOT/EOT."""
    ids = []
    for word in _CLIP_PATTERN.findall(_clean(text)):
      ids.extend(self._word_ids(''.join(self._byte_encoder[b] for b in word.encode('utf-8'))))
    return ids

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids`, with a space after each word. Only trailing pad is dropped: id 0 is also
    the byte '!', but a word always ends in an '</w>' token, so real text never ends in id 0."""
    data = bytearray()
    for i in _content(ids, self.sot_id, self.eot_id, self.pad_id):
      token = self._decoder[i]
      word_end = token.endswith(_END_OF_WORD)
      data.extend(self._byte_decoder[c] for c in token.removesuffix(_END_OF_WORD))
      if word_end:
        data.extend(b' ')
    # A cut row can end inside a multi-byte character.
    return data.decode('utf-8', errors='replace').strip()


class WordTokenizer(_Tokenizer):
  """A file-free tokenizer over a fixed word list, for the synthetic world.

  Text is lower-cased and split into letter runs, digit runs and single punctuation marks; word
  i of `vocabulary` gets id i + 1. The synthetic world writes its captions from its own
  vocabulary, so a word outside it is a bug and raises rather than mapping to an unknown id.
  """

  def __init__(self, vocabulary: Sequence[str], context_length: int = 32, vocab_size: int = 1024):
    vocabulary = list(vocabulary)
    if len(vocabulary) > vocab_size - 3:
      raise ValueError(
          f'vocabulary has {len(vocabulary)} words but vocab_size={vocab_size} leaves room for '
          f'{vocab_size - 3} (ids 0, vocab_size-2 and vocab_size-1 are pad, SOT and EOT)'
      )
    seen = set()
    for word in vocabulary:
      if word in seen:
        raise ValueError(f'vocabulary lists {word!r} twice')
      if not _WORD_PATTERN.fullmatch(word):
        raise ValueError(f'vocabulary entry {word!r} is not a single lower-case word or mark')
      seen.add(word)
    super().__init__(vocab_size, context_length)
    self._words = vocabulary
    self._ids = {word: i + 1 for i, word in enumerate(vocabulary)}

  def encode(self, text: str) -> list[int]:
    """Token ids of `text`, without SOT/EOT; raises ValueError on a word not in the
    vocabulary."""
    ids = []
    for word in _WORD_PATTERN.findall(text.lower()):
      if word not in self._ids:
        raise ValueError(f'word {word!r} is not in the vocabulary (in {text!r})')
      ids.append(self._ids[word])
    return ids

  def decode(self, ids: Sequence[int]) -> str:
    """Words joined by spaces, with punctuation attached to the word before it. Ids that no
    word uses (an untrained model may emit them) read as '<unk>'."""
    text = ''
    for i in _content(ids, self.sot_id, self.eot_id, self.pad_id):
      if i == self.pad_id:
        continue
      word = self._words[i - 1] if 0 < i <= len(self._words) else '<unk>'
      is_mark = len(word) == 1 and not word.isalnum()
      text += word if not text or is_mark else ' ' + word
    return text
