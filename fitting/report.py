"""Plain-data views of fits for JSON, and CSV / Markdown / LaTeX renderings of row tables."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from fitting import bootstrap as bootstrap_lib
from fitting import heldout as heldout_lib
from fitting import solver


def fit_summary(
    fit: solver.Fit,
    frontier=None,
    held_out: heldout_lib.HeldOut | None = None,
    boot: bootstrap_lib.Bootstrap | None = None,
    level: float = 0.95,
) -> dict:
  """Everything a reader needs to reuse or judge a fit, as JSON-ready values.

  `frontier` is the (x, error) of the fitted points; ln b is given alongside b because b
  near e^18 reads better as its logarithm.
  """
  params = fit.params
  if 'b' in params:
    params['ln_b'] = float(fit.theta[1])
  out = dict(
      form=fit.form.name,
      loss=fit.loss,
      params=params,
      n_points=fit.n_points,
      mse=fit.mse,
      share_of_starts_at_best=fit.share_at_best,
  )
  if frontier is not None:
    out['frontier'] = [dict(x=float(x), error=float(y)) for x, y in zip(*frontier)]
  if held_out is not None:
    out['held_out'] = dict(threshold=held_out.threshold, points=held_out.rows())
  if boot is not None:
    out['bootstrap'] = dict(
        replicates=len(boot.thetas),
        seed=boot.seed,
        level=level,
        resampled=boot.resampled,
        seed_noise=boot.seed_noise,
        param_intervals={k: list(v) for k, v in boot.param_intervals(level).items()},
    )
  return out


def _cell(value) -> str:
  if isinstance(value, (float, np.floating)):
    return 'nan' if math.isnan(value) else f'{value:.4g}'
  return str(value)


def to_csv(rows: list[dict]) -> str:
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  return buffer.getvalue()


def to_markdown(rows: list[dict]) -> str:
  header = list(rows[0])
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(_cell(r[k]) for k in header) + ' |' for r in rows]
  return '\n'.join(lines) + '\n'


def to_latex(rows: list[dict]) -> str:
  header = list(rows[0])
  escape = lambda s: s.replace('_', r'\_').replace('%', r'\%').replace('&', r'\&')
  lines = [r'\begin{tabular}{' + 'l' * len(header) + '}', r'\toprule']
  lines.append(' & '.join(escape(h) for h in header) + r' \\')
  lines.append(r'\midrule')
  lines += [' & '.join(escape(_cell(r[k])) for k in header) + r' \\' for r in rows]
  lines += [r'\bottomrule', r'\end{tabular}']
  return '\n'.join(lines) + '\n'


TABLE_FORMATS = {'csv': to_csv, 'md': to_markdown, 'tex': to_latex}
