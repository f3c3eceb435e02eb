"""The vocabulary: every word a caption or zero-shot prompt can contain, for the word tokenizer."""

from __future__ import annotations

import re

from scaling_vlm.data.synthetic import words
from scaling_vlm.data.synthetic.captions import CAPTION_TEMPLATES, plural
from scaling_vlm.data.synthetic.eval_sets import ZERO_SHOT_TEMPLATES

_WORD = re.compile(r'[a-z]+|[0-9]+|[^\sa-z0-9]')


def caption_words(text: str) -> list[str]:
  """The words of a text as the synthetic tokenizer splits it (lower-cased)."""
  return _WORD.findall(text.lower())


def _vocabulary() -> tuple[str, ...]:
  """Every word a caption or zero-shot prompt can contain, sorted."""
  texts = [re.sub(r'\{\w+\}', ' ', t) for _, t in CAPTION_TEMPLATES]
  texts += [t.replace('{c}', ' ') for ts in ZERO_SHOT_TEMPLATES.values() for t in ts]
  tables = (words.SHAPE_WORDS, words.COLOUR_WORDS, words.SIZE_WORDS, words.REGION_WORDS)
  tables += (words.RELATION_WORDS, words.BACKGROUND_WORDS)
  texts += [word for table in tables for synonyms in table.values() for word in synonyms]
  texts += [plural(w) for synonyms in words.SHAPE_WORDS.values() for w in synonyms]
  texts += [*words.TONES, *words.NUMBERS, *(w for pair in words.THINGS for w in pair)]
  texts += ['a an single in and background is are ,']  # the literals of captions._Slots
  return tuple(sorted({word for text in texts for word in caption_words(text)}))


VOCABULARY: tuple[str, ...] = _vocabulary()
