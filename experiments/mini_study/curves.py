"""Learning curves per task: is the synthetic world learnable yet not trivial? Each panel is
one evaluation task, accuracy against samples seen, one line per model of a procedure's
constant-LR ladder; chance level dashed."""

from __future__ import annotations

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
from matplotlib import ticker  # pylint: disable=g-import-not-at-top
import pandas as pd

from scaling_vlm.data import synthetic

# (task, metric, chance) per panel.
PANELS = (
    ('synthetic/colour', 'acc1', 1 / len(synthetic.COLOURS)),
    ('synthetic/count', 'acc1', 1 / synthetic.MAX_OBJECTS),
    ('synthetic/shape', 'acc1', 1 / len(synthetic.SHAPES)),
    ('synthetic/retrieval', 'image_retrieval_recall@5', None),
)


def figure(results: pd.DataFrame, procedures, path: str) -> None:
  """`results` with a `procedure` column (`analysis.with_procedure`)."""
  const = results[results['lr_schedule'] == 'const']
  fig, axes = plt.subplots(
      len(procedures),
      len(PANELS),
      figsize=(3.2 * len(PANELS), 2.6 * len(procedures)),
      squeeze=False,
      sharex=True,
      sharey='col',
  )
  for row, procedure in zip(axes, procedures):
    own = const[const['procedure'] == procedure]
    for ax, (task, metric, chance) in zip(row, PANELS):
      rows = own[(own['task'] == task) & (own['metric'] == metric)]
      for model, curve in rows.sort_values('params').groupby('model', sort=False):
        curve = curve.sort_values('samples_seen')
        ax.plot(curve['samples_seen'], curve['value'], 'o-', markersize=3, label=model)
      if chance is not None:
        ax.axhline(chance, color='grey', linestyle='--', linewidth=1)
      ax.set_xscale('log')
      ax.xaxis.set_minor_formatter(ticker.NullFormatter())  # labels every 2x would overlap
      ax.set_title(f'{procedure}: {task.split("/")[-1]} {metric}', fontsize=8)
    row[0].legend(fontsize=6)
  for ax in axes[-1]:
    ax.set_xlabel('samples seen')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
