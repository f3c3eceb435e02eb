"""One benchmark line, `key=value` separated by spaces, shared by the JAX and PyTorch scripts
so that their lines compare field by field (and `vs_open_clip.py` can parse both).

No JAX import here: the PyTorch script uses this module too.
"""

from __future__ import annotations

# The fields every training-throughput line starts with, in this order; more may follow.
FIELDS = (
    'device',
    'peak_tflops',
    'model',
    'batch',
    'dtype',
    'attention',
    'remat',
    'scan',
    'samples_per_s',
    'step_ms',
    'mfu',
    'peak_mem_gb',
)


def _value(value) -> str:
  if isinstance(value, float):
    value = f'{value:.4g}' if abs(value) < 1e4 else f'{value:.0f}'
  return str(value).replace(' ', '_')  # device kinds have spaces: keep one token per field


def format_line(row: dict) -> str:
  missing = [key for key in FIELDS if key not in row]
  if missing:
    raise ValueError(f'benchmark row lacks {missing}; every line carries {list(FIELDS)}.')
  keys = list(FIELDS) + [key for key in row if key not in FIELDS]
  return ' '.join(f'{key}={_value(row[key])}' for key in keys)


def parse_line(line: str) -> dict[str, str]:
  return dict(token.split('=', 1) for token in line.split() if '=' in token)


def mfu(train_flops_per_sample: float, samples_per_s: float, peak_flops: float | None):
  """Model FLOPs utilisation: training FLOPs done per second over the device's bf16 peak."""
  if not peak_flops:
    return 'n/a'
  return round(train_flops_per_sample * samples_per_s / peak_flops, 4)
