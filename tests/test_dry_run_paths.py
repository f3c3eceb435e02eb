"""A dry run looks at every input its runs read (shards, BPE files, checkpoints to start from)
and lists the missing ones, each once, with the budget still printed; so does the trainer's
own check, which names them all at once instead of the first."""

import pathlib

import pytest

from experiments import launch
from scaling_vlm.train import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
BPE = str(REPO / 'tests/fixtures/bpe_simple_vocab_16e6.txt.gz')


def write_sweep(tmp_path, body):
  path = tmp_path / 'sweep.py'
  path.write_text(
      'from experiments.sweep import Run\n\n'
      "SMALL = {'train.samples': 2048, 'train.global_batch': 64, 'train.warmup': 128}\n\n"
      'def runs():\n' + body
  )
  return str(path)


def test_a_dry_run_lists_every_missing_input_once_and_still_prints_the_budget(tmp_path, capsys):
  shards, bpe = tmp_path / 'nope' / '{0..3}.tar', tmp_path / 'gone' / 'bpe.txt.gz'
  start = tmp_path / 'no-such-run'
  wds = {'data.source': 'wds', 'data.shards': str(shards), 'data.tokenizer': 'clip_bpe'}
  sweep = write_sweep(
      tmp_path,
      f"  for name in ('a', 'b'):\n"
      f"    yield Run(name, 'configs/clip.py:tiny-1', {{**SMALL, **{wds!r}, 'data.bpe_path': {str(bpe)!r}}})\n"
      f"  yield Run('c', 'configs/clip.py:tiny-1', {{**SMALL, 'init.checkpoint': {str(start)!r}}})\n"
      f"  yield Run('const', 'configs/clip.py:tiny-1', {{**SMALL, 'optim.schedule': 'const',\n"
      f"            'checkpoint.milestones': '1536,2048', 'data.tokenizer': 'clip_bpe',\n"
      f"            'data.bpe_path': {BPE!r}}})\n"
      f"  yield Run('cool', 'configs/clip.py:tiny-1', {{**SMALL, 'optim.schedule': 'cooldown',\n"
      f"            'cooldown.start': 1536, 'data.tokenizer': 'clip_bpe', 'data.bpe_path': {BPE!r}}},\n"
      f"            parent='const')\n",
  )  # fmt: skip
  for extra in ([], ['--out', str(tmp_path / 'out')]):
    assert launch.main([sweep, '--dry-run', *extra]) == 0
    lines = capsys.readouterr().out.splitlines()
    i = lines.index('missing inputs: 3 not found on this machine (each run checks again)')
    missing = lines[i + 1 : i + 4]
    assert missing[0].startswith(f"  data.shards='{shards}' names {tmp_path}/nope/0.tar")
    assert missing[0].endswith('none of them exists. (2 runs, e.g. a)')
    assert missing[1] == f"  data.bpe_path='{bpe}' does not exist. (2 runs, e.g. a)"
    assert missing[2] == f"  init.checkpoint='{start}' does not exist. (c)"
    # The branch's parent is a run of the sweep, made before it: no input to look for.
    assert lines[i + 4].startswith('total: 5 runs, ')
  assert not (tmp_path / 'out').exists()  # a dry run writes nothing


def test_a_sweep_whose_inputs_are_here_lists_none(tmp_path, capsys):
  shard = tmp_path / '00000.tar'
  shard.write_bytes(b'')
  sweep = write_sweep(
      tmp_path,
      f"  yield Run('a', 'configs/clip.py:tiny-1', {{**SMALL, 'data.source': 'wds',\n"
      f"            'data.shards': {str(shard)!r}, 'data.tokenizer': 'clip_bpe',\n"
      f"            'data.bpe_path': {BPE!r}}})\n",
  )  # fmt: skip
  assert launch.main([sweep, '--dry-run']) == 0
  out = capsys.readouterr().out
  assert 'missing inputs' not in out and out.splitlines()[-1].startswith('total: 1 runs')


def test_the_trainers_check_names_every_missing_input_at_once(tmp_path):
  config = config_lib.build_config(
      'configs/clip.py:tiny-1',
      {
          'data.source': 'arrayrecord',
          'data.shards': str(tmp_path / 'x.array_record'),
          'data.tokenizer': 'clip_bpe',
          'data.bpe_path': str(tmp_path / 'bpe.gz'),
          'init.checkpoint': str(tmp_path / 'run:100'),
          'optim.schedule': 'cooldown',
          'cooldown.parent': str(tmp_path / 'const'),
          'cooldown.start': 64,
      },
  )
  problems = config_lib.missing_inputs(config)
  assert [p.split('=')[0] for p in problems] == [
      'data.shards',
      'data.bpe_path',
      'init.checkpoint',
      'cooldown.parent',
  ]
  assert len(config_lib.missing_inputs(config, parent=False)) == 3
  with pytest.raises(ValueError) as error:
    config_lib.check_inputs(config)
  assert str(error.value) == ' '.join(problems) and '\n' not in str(error.value)
