"""MaMMUT runs. `--config=configs/mammut.py:mammut_ViT-B-32` (or `:ViT-B-32`) or `:tiny`.

Loss = 1.0 x contrastive + 2.0 x caption cross-entropy (`config.loss`).
"""

from configs import presets


def get_config(preset: str = 'mammut_ViT-B-32'):
  return presets.make('mammut', preset)
