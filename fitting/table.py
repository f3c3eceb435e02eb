"""The results table: reading ours, and importing the paper's two formats.

Long format, one row per (run, checkpoint, task, metric). Every reader returns the same
columns, so filters and fits never need to know where a table came from. `COLUMNS` (and
`OPTIONAL_COLUMNS`) are the contract with the training side, which writes them
(`scaling_vlm.run.RESULT_COLUMNS`; this package never imports it, and a test holds the two
equal).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

# What a run is, besides its name: the same values in every row of a run, and runs that share
# all of them (and differ only in `seed`) are replicates of one experiment.
RUN_CONFIG_COLUMNS = (
    'arch',
    'model',
    'pretrain_dataset',
    'lr_schedule',
    'lr',
    'global_batch_size',
    'warmup',
    'total_samples',
)
COLUMNS = (
    'run_id',
    *RUN_CONFIG_COLUMNS,
    'samples_seen',
    'gflops_per_sample',
    'compute_gflops',
    'params',
    'task',
    'metric',
    'value',
)
# Read where present: a cooldown branch's 'parent_run@samples' (empty elsewhere), and the
# training seed, which tells replicate runs of one procedure, model and samples apart.
OPTIONAL_COLUMNS = ('cooldown_from', 'seed')

PAPER_CSV_COLUMNS = (
    'model',
    'namespace',
    'pretrain_dataset',
    'downstream_dataset',
    'lr_scheduler',
    'total_samples_seen',
    'epoch',
    'total_epochs',
    'gflops',
    'global_batch_size',
    'warmup',
)
# Read where present and carried into the long table: how a row was evaluated (`similarity`,
# `log_likelihood`, ...), which fig11's script selects on (--eval_type); tables without it
# still import.
PAPER_CSV_OPTIONAL_COLUMNS = ('eval_type',)
PAPER_CSV_METRICS = (
    'acc1',
    'image_retrieval_recall@5',
    'text_retrieval_recall@5',
    'contrastive_loss',
)
PAPER_PARQUET_COLUMNS = (
    'model',
    'namespace',
    'pretrain_dataset',
    'downstream_dataset',
    'lr_scheduler',
    'samples_seen',
    'global_batch_size',
    'warmup',
    'lr',
    'model_gflops',
    'gflops',
)
# Numbers in the released Parquet that describe a run, not its evaluation: never metrics.
# (`main_metric_value` repeats the task's main metric, `miou` for ADE20K, under another name.)
PAPER_PARQUET_RUN_NUMBERS = (
    'epoch',
    'total_epochs',
    'steps',
    'samples_seen_per_epoch',
    'local_batch_size',
    'gpus',
    'gpu_hours',
    'training_time_hours',
    'samples_per_sec',
    'samples_per_sec_per_gpu',
    'model_mparams',
    'model_image_mparams',
    'model_text_mparams',
    'main_metric_value',
)


def require_columns(frame: pd.DataFrame, columns, what: str) -> None:
  missing = [c for c in columns if c not in frame.columns]
  if missing:
    raise ValueError(f'{what} is missing columns {missing}; it has {list(frame.columns)}')


def _read(path) -> pd.DataFrame:
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f'no results table at {path}')
  if path.suffix == '.parquet':
    return pd.read_parquet(path)
  return pd.read_csv(path)  # .csv and .csv.gz alike


# The paper's model families: its tables' `namespace` values.
FAMILIES = ('clip', 'mammut', 'coca', 'siglip', 'cap')


# What tells one training run of the paper's tables from another, in the order a run id lists
# it: each column holds one value per run. Its total samples seen (`total_samples`, from the
# table's own column) and hyper-parameters tell apart runs of one model; `name`, the run's log
# folder, which the paper's results builder writes and the segmentation Parquet keeps, also
# tells apart runs that differ only in their number of nodes. A column the table lacks is left
# out; none of them can split one run in two.
PAPER_RUN_COLUMNS = (
    'model',
    'pretrain_dataset',
    'namespace',
    'total_samples',
    'lr_scheduler',
    'total_epochs',
    'global_batch_size',
    'warmup',
    'lr',
    'name',
)


def _key_text(value) -> str:
  if isinstance(value, (int, float, np.number)):
    return '' if pd.isna(value) else f'{value:g}'
  return str(value)


def _paper_run_ids(wide: pd.DataFrame, total_samples: pd.Series) -> pd.Series:
  """One id per training run, from the `PAPER_RUN_COLUMNS` the table has."""
  columns = dict(wide.items(), total_samples=total_samples)
  parts = [columns[c].map(_key_text) for c in PAPER_RUN_COLUMNS if c in columns]
  return pd.Series(['/'.join(key) for key in zip(*parts)], index=wide.index)


def _family_by_name(model: str) -> str:
  """The family the paper's own code reads from a model's name (get_model_type)."""
  if 'siglip' in model.lower():
    return 'siglip'
  for family in ('cap', 'mammut', 'coca'):
    if family in model:
      return family
  return 'clip'


def _arch(wide: pd.DataFrame) -> pd.Series:
  """The architecture of each row: the table's `namespace` where it names a family (CoCa and
  SigLIP runs are not CLIP's), else what the paper's code reads from the model's name."""
  by_name = wide['model'].map(_family_by_name)
  return wide['namespace'].where(wide['namespace'].isin(FAMILIES), by_name)


def read_results(path) -> pd.DataFrame:
  """Our long results table (CSV, CSV.gz or Parquet), checked for the contract's columns."""
  frame = _read(path)
  require_columns(frame, COLUMNS, f'results table {path}')
  return frame


def import_paper_csv(path) -> pd.DataFrame:
  """The paper's wide `all_results.csv.gz`: one row per checkpoint × downstream dataset.

  samples_seen = total_samples_seen · epoch / total_epochs, and compute = gflops (per
  sample) × samples_seen, the paper's compute axis; each non-empty metric becomes a row.
  """
  wide = _read(path)
  require_columns(wide, PAPER_CSV_COLUMNS, f'paper results {path}')
  metrics = [m for m in PAPER_CSV_METRICS if m in wide.columns]
  if not metrics:
    raise ValueError(f'paper results {path} has none of the metric columns {PAPER_CSV_METRICS}')
  samples = wide['total_samples_seen'] * wide['epoch'] / wide['total_epochs']
  base = pd.DataFrame(
      {
          'run_id': _paper_run_ids(wide, wide['total_samples_seen']),
          'arch': _arch(wide),
          'model': wide['model'],
          'pretrain_dataset': wide['pretrain_dataset'],
          'lr_schedule': wide['lr_scheduler'],
          'lr': wide['lr'] if 'lr' in wide.columns else np.nan,
          'global_batch_size': wide['global_batch_size'],
          'warmup': wide['warmup'],
          'total_samples': wide['total_samples_seen'],
          'samples_seen': samples,
          'gflops_per_sample': wide['gflops'],
          'compute_gflops': wide['gflops'] * samples,
          'params': np.nan,
          'task': wide['downstream_dataset'],
      }
  )
  for column in PAPER_CSV_OPTIONAL_COLUMNS:
    if column in wide.columns:
      base[column] = wide[column]
  return _melt(base, wide, metrics)


def import_paper_parquet(path) -> pd.DataFrame:
  """The paper's per-run evaluation Parquet, where `gflops` already is total compute.

  Every row is a run's final evaluation (in the released segmentation_results.parquet, epoch
  equals total_epochs on all 1,431 rows, and `name`, the run, is never repeated), and the
  paper's code reads it so (`scaling_laws/main.py` sets total_samples_seen = samples_seen for
  ADE20K): a row's total samples are its own samples seen.
  """
  wide = _read(path)
  require_columns(wide, PAPER_PARQUET_COLUMNS, f'paper per-run results {path}')
  metrics = [
      c
      for c in wide.columns
      if c not in PAPER_PARQUET_COLUMNS + PAPER_PARQUET_RUN_NUMBERS
      and pd.api.types.is_numeric_dtype(wide[c])
  ]
  if not metrics:
    raise ValueError(f'paper per-run results {path} has no numeric metric columns')
  base = pd.DataFrame(
      {
          'run_id': _paper_run_ids(wide, wide['samples_seen']),
          'arch': _arch(wide),
          'model': wide['model'],
          'pretrain_dataset': wide['pretrain_dataset'],
          'lr_schedule': wide['lr_scheduler'],
          'lr': wide['lr'],
          'global_batch_size': wide['global_batch_size'],
          'warmup': wide['warmup'],
          'total_samples': wide['samples_seen'],
          'samples_seen': wide['samples_seen'],
          'gflops_per_sample': wide['model_gflops'],
          'compute_gflops': wide['gflops'],
          'params': wide['model_mparams'] * 1e6 if 'model_mparams' in wide else np.nan,
          'task': wide['downstream_dataset'],
      }
  )
  return _melt(base, wide, metrics)


def _melt(base: pd.DataFrame, wide: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
  parts = []
  for metric in metrics:
    part = base.assign(metric=metric, value=wide[metric].to_numpy())
    parts.append(part[wide[metric].notna().to_numpy()])
  extra = [c for c in base.columns if c not in COLUMNS]  # optional columns, after the contract's
  return pd.concat(parts, ignore_index=True)[list(COLUMNS) + extra]
