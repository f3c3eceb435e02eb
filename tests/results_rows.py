"""Results tables for the fitting tests, in the columns the training side writes
(`fitting.table.COLUMNS`): one row per run, checkpoint and metric."""

import pandas as pd

from fitting import table


def row(arch, dataset, gflops, samples, error, *, run_id=None, model=None, **extra) -> dict:
  """One cosine run's ImageNet-1k accuracy, 1 - `error`, at the end of its `samples`."""
  return (
      dict(
          run_id=run_id or f'{arch}-{dataset}-{gflops:.3g}-{samples:.3g}',
          arch=arch,
          model=model or f'{arch}-{gflops:.3g}',
          pretrain_dataset=dataset,
          lr_schedule='cosine',
          lr=1e-3,
          global_batch_size=1024,
          warmup=10,
          total_samples=samples,
          samples_seen=samples,
          gflops_per_sample=gflops,
          compute_gflops=gflops * samples,
          params=gflops * 1e7,
          task='imagenet1k',
          metric='acc1',
          value=1 - error,
      )
      | extra
  )


def write(rows, path, *optional) -> str:
  """`rows` as a results.csv at `path`, with the optional columns named."""
  pd.DataFrame(rows)[[*table.COLUMNS, *optional]].to_csv(path, index=False)
  return str(path)
