"""CLIP runs. `--config=configs/clip.py:ViT-B-32` (any CLIP name of the zoo) or `:tiny`; a
model of your own with `--config.model.name=path/to/model.json` (open_clip's model-config
schema or ours: scaling_vlm/models/custom.py).

The paper's recipe is the default (scaling_vlm/train/config.py); a preset sets the model and
what differs at that scale. `tiny` trains on the synthetic world on a CPU in seconds.
"""

from configs import presets


def get_config(preset: str = 'ViT-B-32'):
  return presets.make('clip', preset)
