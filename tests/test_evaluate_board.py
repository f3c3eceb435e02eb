"""Evaluation rows reach the run's TensorBoard: `eval/<task>/<metric>` at the checkpoint's
step, the values of results.csv; none for a run trained without TensorBoard, and a rerun that
writes no rows leaves no event file."""

import csv
import glob
import os
import struct

import pytest

from scaling_vlm.evaluate import __main__ as cli
from scaling_vlm.evaluate import board
from test_evaluate_progress import SMALL, fake_run

event_pb2 = pytest.importorskip('tensorboardX.proto.event_pb2')
TASKS = ['--tasks', 'synthetic/shape', 'synthetic/retrieval']


def scalars(logdir):
  """{(step, tag): value} of every event file in `logdir`: TFRecord framing (length, its CRC,
  the Event, its CRC) read here, as no TensorFlow or tensorboard package is installed."""
  out = {}
  for path in glob.glob(os.path.join(logdir, 'events.out.tfevents.*')):
    data, at = open(path, 'rb').read(), 0
    while at < len(data):
      (length,) = struct.unpack('<Q', data[at : at + 8])
      event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
      at += 12 + length + 4
      for value in event.summary.value:
        out[(event.step, value.tag)] = value.simple_value
  return out


def table(workdir):
  with open(os.path.join(workdir, 'results.csv'), newline='') as file:
    return {
        (int(r['samples_seen']) // 16, board.tag(r['task'], r['metric'])): float(r['value'])
        for r in csv.DictReader(file)
    }


def test_every_row_is_a_scalar_at_its_checkpoint_s_step(tmp_path):
  workdir = fake_run(tmp_path / 'tiny')
  assert cli.main(['--workdir', workdir, *TASKS, *SMALL]) == 0
  written = scalars(os.path.join(workdir, 'tensorboard'))
  assert written == pytest.approx(table(workdir))
  assert {step for step, _ in written} == {10, 20}
  assert (10, 'eval/synthetic/shape/acc1') in written
  assert (20, 'eval/synthetic/retrieval/image_retrieval_recall_10') in written  # '@' is not allowed
  assert (20, 'eval/zeroshot_average/acc5') in written

  files = glob.glob(os.path.join(workdir, 'tensorboard', '*'))
  assert cli.main(['--workdir', workdir, *TASKS, *SMALL]) == 0  # nothing left to do
  assert glob.glob(os.path.join(workdir, 'tensorboard', '*')) == files


def test_a_run_trained_without_tensorboard_gets_none(tmp_path):
  workdir = fake_run(tmp_path / 'tiny', tensorboard=False)
  assert cli.main(['--workdir', workdir, '--tasks', 'synthetic/shape', *SMALL]) == 0
  assert os.path.exists(os.path.join(workdir, 'results.csv'))
  assert not os.path.exists(os.path.join(workdir, 'tensorboard'))
