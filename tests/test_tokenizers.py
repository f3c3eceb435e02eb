"""Tests for scaling_vlm.data.tokenizers, against a small hand-written merges file."""

import gzip
import importlib.util
import pickle
import sys

import numpy as np
import ml_collections
import pytest

from scaling_vlm.data import sources
from scaling_vlm.data.tokenizers import ClipTokenizer, WordTokenizer
from scaling_vlm.models.config import TextConfig
from scaling_vlm.train import config

# Merges in rank order. 'l o</w>' ranks below 'l l', so 'hello' must merge 'll' first.
MERGES = [
    'h e',  # 512 he
    'l l',  # 513 ll
    'he ll',  # 514 hell
    'hell o</w>',  # 515 hello</w>
    'w o',  # 516 wo
    'r l',  # 517 rl
    'wo rl',  # 518 worl
    'worl d</w>',  # 519 world</w>
    'l o</w>',  # 520 lo</w>
]
SOT, EOT = 512 + len(MERGES), 513 + len(MERGES)


def _byte(char: str) -> int:
  """Id of a printable ASCII character: the byte alphabet starts at '!' (id 0)."""
  return ord(char) - ord('!')


def _end(char: str) -> int:
  """Id of the same character ending a word ('x</w>')."""
  return 256 + _byte(char)


def _write_merges(path, merges) -> str:
  with gzip.open(path, 'wt', encoding='utf-8') as f:
    f.write('#version: 0.2\n' + '\n'.join(merges) + '\n')
  return str(path)


@pytest.fixture
def clip(tmp_path) -> ClipTokenizer:
  return ClipTokenizer(_write_merges(tmp_path / 'merges.txt.gz', MERGES), context_length=8)


@pytest.mark.parametrize(
    'text, ids',
    [
        ('hello', [515]),
        ('lo', [520]),
        ('help', [512, _byte('l'), _end('p')]),
        # Every occurrence of the best pair merges; 'hell' + 'o' is no merge mid-word.
        ('hellohello', [514, _byte('o'), 515]),
        ('Hello,   World!', [515, _end(','), 519, _end('!')]),
        # Inside a punctuation run '!' is id 0, the same as pad.
        ('wow!!', [516, _end('w'), _byte('!'), _end('!')]),
    ],
)
def test_clip_encode_ids(clip, text, ids):
  assert clip.encode(text) == ids


def test_clip_vocabulary_layout(clip):
  assert clip.vocab_size == 512 + len(MERGES) + 2
  assert (clip.sot_id, clip.eot_id, clip.pad_id, clip.context_length) == (SOT, EOT, 0, 8)


def test_clip_real_file_size_gives_openai_ids(tmp_path):
  # Like the real 16e6 file, this one has more merge lines than open_clip reads.
  merges = [f'x{i} y' for i in range(49152 - 256 - 2 + 10)]
  tok = ClipTokenizer(_write_merges(tmp_path / 'big.txt.gz', merges))
  assert (tok.vocab_size, tok.sot_id, tok.eot_id, tok.context_length) == (49408, 49406, 49407, 77)


@pytest.mark.parametrize(
    'text, clean',
    [
        ('Hello,   World!', 'hello , world !'),
        ('wow!!', 'wow !!'),
        ('  Caf\u00e9 &amp;amp; 42\n\t cats ', 'café & 4 2 cats'),
        ("It's ÜBER-cool", "it 's über - cool"),
    ],
)
def test_clip_round_trip(clip, text, clean):
  assert clip.decode(clip.encode(text)) == clean


def test_clip_batch(clip):
  tokens = clip(['hello world', 'help'])
  assert tokens.dtype == np.int32
  np.testing.assert_array_equal(
      tokens,
      [
          [SOT, 515, 519, EOT, 0, 0, 0, 0],
          [SOT, 512, _byte('l'), _end('p'), EOT, 0, 0, 0],
      ],
  )
  assert clip('hello').shape == (1, 8)
  assert clip.decode(tokens[0]) == 'hello world'


def test_clip_truncation_keeps_eot_last(clip):
  tokens = clip('hello world ' * 10)[0]
  np.testing.assert_array_equal(tokens, [SOT, 515, 519, 515, 519, 515, 519, EOT])
  assert tokens.argmax() == len(tokens) - 1


def test_clip_pickle_round_trip(clip):
  texts = ['hello world', 'Caf\u00e9 wow!!', 'hellohello ' * 5]
  expected = clip(texts)
  np.testing.assert_array_equal(pickle.loads(pickle.dumps(clip))(texts), expected)


def test_clip_missing_file_names_path(tmp_path):
  path = tmp_path / 'nowhere' / 'bpe_simple_vocab_16e6.txt.gz'
  with pytest.raises(FileNotFoundError, match=str(path)) as error:
    ClipTokenizer(str(path))
  assert 'open_clip' in str(error.value)


WORDS = ['a', 'red', 'cube', 'left', 'of', 'the', 'sphere', '.', ',', '2']


def test_word_ids_and_round_trip():
  tok = WordTokenizer(WORDS)
  assert tok.encode('A red cube, left of the 2 sphere.') == [1, 2, 3, 9, 4, 5, 6, 10, 7, 8]
  assert (tok.vocab_size, tok.sot_id, tok.eot_id, tok.pad_id) == (1024, 1022, 1023, 0)
  text = 'a red cube, left of the 2 sphere.'
  assert tok.decode(tok.encode(text)) == text
  row = tok(text)[0]
  assert row[0] == 1022 and row[11] == 1023 and not row[12:].any()
  assert tok.decode(row) == text
  assert tok.decode([1, 500, 3]) == 'a <unk> cube'


def test_word_truncation_and_pickle():
  tok = WordTokenizer(WORDS, context_length=4, vocab_size=16)
  np.testing.assert_array_equal(tok(['a red cube left', 'the']), [[14, 1, 2, 15], [14, 6, 15, 0]])
  np.testing.assert_array_equal(pickle.loads(pickle.dumps(tok))('red cube'), tok('red cube'))


def test_word_errors():
  with pytest.raises(ValueError, match="'blue'"):
    WordTokenizer(WORDS).encode('a blue cube')
  with pytest.raises(ValueError, match='room for 5'):
    WordTokenizer(['a', 'b', 'c', 'd', 'e', 'f'], vocab_size=8)
  with pytest.raises(ValueError, match="'red' twice"):
    WordTokenizer(['red', 'red'])
  with pytest.raises(ValueError, match="'Red'"):
    WordTokenizer(['Red'])


def test_make_tokenizer_by_config_name(tmp_path, monkeypatch):
  path = _write_merges(tmp_path / 'merges.txt.gz', MERGES)
  bpe_ids = ClipTokenizer(path, 5).vocab_size
  data = ml_collections.ConfigDict(dict(tokenizer='clip_bpe', bpe_path=str(path), seed=0))
  text = TextConfig(32, 1, 1, context_length=5, vocab_size=bpe_ids)
  assert sources.make_tokenizer(data, text)('hello').shape == (1, 5)
  data.tokenizer = 'word'
  assert sources.make_tokenizer(data, text)('a red circle').shape == (1, 5)
  data.tokenizer = 'spm'
  with pytest.raises(ValueError, match="data.tokenizer='spm'.*word.*clip_bpe"):
    sources.make_tokenizer(data, text)
  data.tokenizer, data.bpe_path = 'clip_bpe', ''
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)  # no open_clip installed
  with pytest.raises(ValueError, match='bpe_path.*open_clip_torch'):
    sources.make_tokenizer(data, text)


def test_empty_bpe_path_takes_the_file_of_an_installed_open_clip(tmp_path, monkeypatch):
  # A stand-in open_clip package that must be found, not imported (open_clip imports torch).
  package = tmp_path / 'open_clip'
  package.mkdir()
  (package / '__init__.py').write_text('raise ImportError("open_clip was imported")')
  bpe = _write_merges(package / 'bpe_simple_vocab_16e6.txt.gz', MERGES)
  monkeypatch.syspath_prepend(str(tmp_path))  # also invalidates the import caches
  monkeypatch.delitem(sys.modules, 'open_clip', raising=False)  # a real one, already imported
  run = config.base_config()
  run.data.tokenizer, run.data.bpe_path = 'clip_bpe', ''
  assert sources.clip_bpe_path(run.data) == bpe
  config.check_inputs(run)
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
  with pytest.raises(ValueError, match='bpe_path.*open_clip_torch'):
    config.check_inputs(run)
  run.data.bpe_path = str(tmp_path / 'missing.txt.gz')
  with pytest.raises(ValueError, match='missing.txt.gz.*does not exist'):
    config.check_inputs(run)
