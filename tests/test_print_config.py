"""`--print_config`: every config key with its value, default, allowed values and meaning, all
from the one place that defines the keys (train/config.py)."""

import pathlib
import subprocess
import sys

from scaling_vlm.data import sources
from scaling_vlm.train import config as config_lib, config_help, losses, schedules

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_key_has_one_line_of_meaning_and_what_it_allows():
  defaults = config_lib.base_config()
  keys = list(config_lib.flat_keys(defaults))
  assert len(keys) > 45
  assert set(config_lib.DOCS) == set(keys)  # none missing, none left over from a removed key
  for key in keys:
    doc = config_lib.DOCS[key]
    assert doc and '\n' not in doc and doc.endswith('.'), key
    assert config_lib.allowed(key), key
  # Every numeric key has its range (README: 'every numeric key has one').
  numeric = {
      k for k in keys
      if isinstance(config_lib.value_at(defaults, k), (int, float))
      and not isinstance(config_lib.value_at(defaults, k), bool)
  }  # fmt: skip
  assert numeric == {key for key, _, _ in config_lib.RANGES}
  # Free-form texts only where neither a range, a registry nor a boolean says it.
  assert not set(config_lib.FORMATS) & (numeric | set(config_lib.CHOICES))


def test_choices_are_the_registries():
  assert config_lib.allowed('data.source') == ' | '.join(sources.SOURCES)
  assert config_lib.allowed('data.tokenizer') == ' | '.join(sources.TOKENIZERS)
  assert config_lib.allowed('optim.schedule') == ' | '.join(schedules.SCHEDULES)
  assert config_lib.allowed('loss.contrastive') == ' | '.join(losses.CONTRASTIVE_TERMS)
  assert config_lib.allowed('model.attention_impl') == 'auto | xla | cudnn'
  assert config_lib.allowed('optim.lr') == '> 0'
  assert config_lib.allowed('log.wandb') == 'True | False'


def test_describe_marks_what_the_preset_and_flags_moved():
  config = config_lib.build_config('configs/clip.py:tiny-1', {'optim.lr': 5e-4})
  text = config_help.describe(config, 'configs/clip.py:tiny-1')
  lines = text.splitlines()
  keys = len(list(config_lib.flat_keys(config_lib.base_config())))
  assert lines[0].startswith(f'{keys} config keys of --config=configs/clip.py:tiny-1')
  i = lines.index("optim.lr = 0.0005  (default 0.001)")
  assert lines[i + 1] == '    Peak learning rate (AdamW). Allowed: > 0.'
  assert "model.name = 'tiny-1'  (default 'ViT-B-32')" in lines
  assert 'optim.b1 = 0.9' in lines  # at its default: no note
  # In base_config's order, model first; a key nobody defined is shown as such.
  assert lines[2].startswith('model.name = ')
  config.log.unread = 3
  assert 'log.unread = 3  (not a key of base_config: no run reads it)' in config_help.describe(
      config
  )


def test_the_cli_prints_the_keys_without_a_workdir(tmp_path):
  out = subprocess.run(
      [sys.executable, '-m', 'scaling_vlm.train', '--config=configs/clip.py:ViT-B-32',
       '--print_config', '--config.optim.schedule=const'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
  )  # fmt: skip
  assert out.returncode == 0, out.stderr
  assert "optim.schedule = 'const'  (default 'cosine')" in out.stdout
  assert 'Allowed: cosine | const | cooldown.' in out.stdout
  assert len([l for l in out.stdout.splitlines() if ' = ' in l]) == len(config_lib.DOCS)
  # Without --print_config, --workdir is still required; an unknown key points here.
  out = subprocess.run(
      [sys.executable, '-m', 'scaling_vlm.train', '--config=configs/clip.py:tiny',
       '--config.optim.learning_rate=1'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
  )  # fmt: skip
  assert out.returncode != 0 and '(--print_config describes each)' in out.stderr
  out = subprocess.run(
      [sys.executable, '-m', 'scaling_vlm.train', '--config=configs/clip.py:tiny'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
  )  # fmt: skip
  assert out.returncode != 0 and '--workdir is required' in out.stderr

