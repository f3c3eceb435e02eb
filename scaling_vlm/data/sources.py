"""The source and tokenizer a run's `data` config names."""

from __future__ import annotations

from scaling_vlm.data import synthetic, tokenizers
from scaling_vlm.data.arrayrecord import ArrayRecordSource
from scaling_vlm.data.wds import WdsSource
from scaling_vlm.models.config import TextConfig

SOURCES = ('synthetic', 'wds', 'arrayrecord')


def make_source(data, image_size: int, split: str = 'train'):
  """A grain random-access source: the synthetic world, or wds / ArrayRecord shards."""
  if data.source == 'synthetic':
    return synthetic.SyntheticWorld(seed=data.seed, image_size=image_size, split=split)
  if data.source == 'wds':
    return WdsSource(data.shards, cache_dir=data.cache_dir or None, strict=data.strict)
  if data.source == 'arrayrecord':
    return ArrayRecordSource(data.shards, strict=data.strict)
  raise ValueError(f'data.source={data.source!r} is not allowed; choose one of {list(SOURCES)}.')


def make_tokenizer(data, text: TextConfig) -> tokenizers.ClipTokenizer | tokenizers.WordTokenizer:
  """The tokenizer for the model's text tower; its ids must fit the model's vocabulary."""
  if data.tokenizer == 'word':
    tokenizer = tokenizers.WordTokenizer(
        synthetic.VOCABULARY, text.context_length, vocab_size=text.vocab_size
    )
  else:
    tokenizer = tokenizers.make_tokenizer(
        data.tokenizer, bpe_path=data.bpe_path or None, context_length=text.context_length
    )
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
