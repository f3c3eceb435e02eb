"""The `python -m scaling_vlm.zoo` command line."""

import json
import subprocess
import sys

import pytest

from scaling_vlm import zoo


def test_json_rows(capsys):
  assert zoo.main(['--json', '--filter', '*ViT-B-32']) == 0
  rows = {row['name']: row for row in json.loads(capsys.readouterr().out)}
  assert set(rows) == {'ViT-B-32', 'mammut_ViT-B-32'}
  clip = rows['ViT-B-32']
  assert {'name', 'arch', 'params', 'gflops_per_sample', 'train_flops_per_sample'} <= set(clip)
  assert clip['arch'] == 'clip' and clip['params'] == 151_277_313
  assert clip['gflops_per_sample'] == pytest.approx(14.54, rel=1e-3)
  # Training FLOPs add attention products and the backward pass: > 3x the forward.
  assert clip['train_flops_per_sample'] > 3 * clip['gflops_per_sample'] * 1e9
  assert rows['mammut_ViT-B-32']['arch'] == 'mammut'


def test_table_lists_every_model():
  out = subprocess.run(
      [sys.executable, '-m', 'scaling_vlm.zoo', '--arch', 'clip'],
      capture_output=True,
      text=True,
      check=True,
  ).stdout
  lines = out.strip().splitlines()[2:]  # header and rule
  assert len(lines) == 25  # 20 open_clip names + 5 tiny
  assert any(line.startswith('ViT-H-14 ') and '986.11M' in line for line in lines)


def test_filter_without_match_is_an_error(capsys):
  with pytest.raises(SystemExit):
    zoo.main(['--filter', 'ResNet*'])
  assert "no model name matches --filter 'ResNet*'" in capsys.readouterr().err
