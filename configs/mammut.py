"""MaMMUT runs. `--config=configs/mammut.py:mammut_ViT-B-32` (or `:ViT-B-32`) or `:tiny`; a
model of your own with `--config.model.name=path/to/model.json` ("arch": "mammut" in our
schema, or the MaMMUT fork's open_clip config: scaling_vlm/models/custom.py).

Loss = 1.0 x contrastive + 2.0 x caption cross-entropy (`config.loss`).
"""

from configs import presets


def get_config(preset: str = 'mammut_ViT-B-32'):
  return presets.make('mammut', preset)
