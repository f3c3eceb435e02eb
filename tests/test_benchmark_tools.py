"""The benchmarks' own logic: the largest-batch search, the shared line format, and
train_throughput.py's subprocess protocol (on the smallest model; no speed is asserted)."""

import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments', 'benchmarks'
)
sys.path.insert(0, BENCHMARKS)

import batch_search  # noqa: E402
import perf_line  # noqa: E402


def search(capacity, **kwargs):
  return batch_search.largest_batch(lambda batch: batch <= capacity, **kwargs)


def test_doubles_until_out_of_memory_then_bisects():
  best, attempts = search(200, start=16, limit=4096, bisect_steps=2)
  assert [b for b, _ in attempts] == [16, 32, 64, 128, 256, 192, 224]
  assert best == 192
  best, _ = search(200, start=16, limit=4096, bisect_steps=10)
  assert best == 200  # bisecting to the end finds the exact capacity (a multiple of 8)


def test_search_edges():
  assert search(10**6, start=16, limit=100)[0] == 64  # doubling stops at the limit
  assert search(8, start=16, limit=100) == (None, [(16, False)])
  with pytest.raises(ValueError, match='start=12 must be a positive multiple of 8'):
    search(100, start=12, limit=100)


def test_lines_lead_with_the_shared_fields_and_parse_back():
  row = {key: 1 for key in perf_line.FIELDS}
  row.update(device='NVIDIA H200', samples_per_s=1234.5678, extra='x')
  line = perf_line.format_line(row)
  assert line.startswith('device=NVIDIA_H200 peak_tflops=1 model=1')
  assert line.endswith('extra=x')
  parsed = perf_line.parse_line(line)
  assert parsed['samples_per_s'] == '1235' and list(parsed)[: len(perf_line.FIELDS)] == list(
      perf_line.FIELDS
  )
  with pytest.raises(ValueError, match=r"lacks \['mfu'\]"):
    perf_line.format_line({k: v for k, v in row.items() if k != 'mfu'})


def test_mfu_is_training_flops_per_second_over_the_peak():
  assert perf_line.mfu(4.43e10, 1000.0, 989e12) == round(4.43e13 / 989e12, 4)
  assert perf_line.mfu(4.43e10, 1000.0, None) == 'n/a'


@pytest.mark.slow
def test_train_throughput_prints_one_line_per_configuration():
  # The parent/child protocol end to end, on the smallest model: a step, then the pipeline.
  script = os.path.join(BENCHMARKS, 'train_throughput.py')
  out = subprocess.run(
      [sys.executable, script, '--model', 'tiny-1', '--batch', '8', '--input', 'pipeline']
      + ['--steps', '1', '--repeats', '1'],
      capture_output=True,
      text=True,
      timeout=600,
  )
  lines = [line for line in out.stdout.splitlines() if line.startswith('device=')]
  assert len(lines) == 1, out.stdout + out.stderr[-2000:]
  row = perf_line.parse_line(lines[0])
  assert row['model'] == 'tiny-1' and row['batch'] == '8' and float(row['samples_per_s']) > 0
  assert row['mem_source'] == 'xla_estimate' and float(row['pipe_slowdown']) > 0
