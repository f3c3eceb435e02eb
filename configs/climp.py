"""CLIMP runs: Mamba image and text towers with CLIP's loss. `--config=configs/climp.py:ViT-B-16`
(`climp_ViT-S-16`, `climp_ViT-B-16`, `climp_ViT-L-14`, with or without the `climp_` prefix),
`:climp_tiny-1` ... `:climp_tiny-5`, or `:tiny` (`climp_tiny-2`).

Each zoo entry matches the parameter budget of the CLIP model it is named after, so a CLIMP
run and a CLIP run of the same name sit side by side on the compute axis.
"""

from configs import presets


def get_config(preset: str = 'climp_ViT-B-16'):
  return presets.make('climp', preset)
