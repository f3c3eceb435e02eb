"""The source and tokenizer a run's `data` config names: one registry of factories each."""

from __future__ import annotations

import importlib.util
import os
from typing import Callable

from scaling_vlm.data import synthetic, tokenizers
from scaling_vlm.data.arrayrecord import ArrayRecordSource
from scaling_vlm.data.wds import WdsSource
from scaling_vlm.models.config import TextConfig

# `data.source` -> (data config, image size, split) -> a grain random-access source. Shards
# have no split: a run names the shards of the split it reads.
SOURCES: dict[str, Callable] = {
    'synthetic': lambda data, image_size, split: synthetic.SyntheticWorld(
        seed=data.seed,
        image_size=image_size,
        split=split,
        caption_noise=data.get('caption_noise', 0.0),  # configs saved before the key existed
    ),
    'wds': lambda data, image_size, split: WdsSource(
        data.shards, cache_dir=data.cache_dir or None, strict=data.strict
    ),
    'arrayrecord': lambda data, image_size, split: ArrayRecordSource(
        data.shards, strict=data.strict
    ),
}


def clip_bpe_path(data) -> str:
  """`data.bpe_path`, or where it is empty the merges file inside an installed open_clip
  package, found without importing open_clip (which imports torch)."""
  if data.bpe_path:
    return data.bpe_path
  spec = importlib.util.find_spec('open_clip')
  for folder in (spec and spec.submodule_search_locations) or []:
    path = os.path.join(folder, 'bpe_simple_vocab_16e6.txt.gz')
    if os.path.isfile(path):
      return path
  raise ValueError(
      "data.tokenizer='clip_bpe' needs data.bpe_path: no installed open_clip package holds "
      "bpe_simple_vocab_16e6.txt.gz, which ships in pip's open_clip_torch (open_clip/) and "
      "OpenAI's CLIP repository (clip/)."
  )


def _clip_bpe(data, text: TextConfig) -> tokenizers.ClipTokenizer:
  return tokenizers.ClipTokenizer(clip_bpe_path(data), text.context_length)


# `data.tokenizer` -> (data config, text tower) -> a tokenizer.
TOKENIZERS: dict[str, Callable] = {
    # The synthetic world's words, with ids spread over the model's vocabulary.
    'word': lambda data, text: tokenizers.WordTokenizer(
        synthetic.VOCABULARY, text.context_length, vocab_size=text.vocab_size
    ),
    'clip_bpe': _clip_bpe,
}


def _lookup(registry: dict[str, Callable], key: str, value: str) -> Callable:
  if value not in registry:
    raise ValueError(f'{key}={value!r} is not allowed; choose one of {list(registry)}.')
  return registry[value]


def make_source(data, image_size: int, split: str = 'train'):
  """A grain random-access source: the synthetic world, or wds / ArrayRecord shards."""
  return _lookup(SOURCES, 'data.source', data.source)(data, image_size, split)


def make_tokenizer(data, text: TextConfig) -> tokenizers.ClipTokenizer | tokenizers.WordTokenizer:
  """The tokenizer for the model's text tower; its ids must fit the model's vocabulary."""
  tokenizer = _lookup(TOKENIZERS, 'data.tokenizer', data.tokenizer)(data, text)
  if tokenizer.vocab_size != text.vocab_size:
    raise ValueError(
        f'data.tokenizer={data.tokenizer!r} has {tokenizer.vocab_size} ids but the model '
        f'embeds {text.vocab_size}; pick a model whose vocabulary matches (tiny-* use the '
        "'word' tokenizer, open_clip names the 49408-id 'clip_bpe')."
    )
  return tokenizer


def source_metrics(source) -> dict[str, float]:
  """What the source found wrong while opening its shards, for the run's metrics."""
  stats = getattr(source, 'stats', {})
  return {
      f'data/{name}': len(stats[name])
      for name in ('missing_shards', 'truncated_shards')
      if name in stats
  }
