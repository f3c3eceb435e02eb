"""Every config key with its value, default, allowed values and meaning (`--print_config`).

absl's `--helpfull` lists the flags of every library the trainer imports, and no config key;
this is the list of the keys themselves, from the one place that defines them
(`train.config`: `base_config`, `DOCS`, and `allowed`'s ranges, registries and formats).
"""

from __future__ import annotations

import ml_collections

from scaling_vlm.train import config as config_lib


def describe(config: ml_collections.ConfigDict, spec: str = '') -> str:
  """Two lines per key: `key = value` (and its default where the preset or a flag moved it),
  then its meaning and what it allows."""
  defaults = config_lib.base_config()
  order = {key: i for i, key in enumerate(config_lib.DOCS)}  # base_config's order
  keys = sorted(config_lib.flat_keys(config), key=lambda k: order.get(k, len(order)))
  source = f' of --config={spec}' if spec else ''
  lines = [
      f'{len(keys)} config keys{source}; set one with --config.KEY=VALUE. Durations and '
      'milestones count samples seen.'
  ]
  section = None
  for key in keys:
    if key.split('.')[0] != section:
      section = key.split('.')[0]
      lines.append('')
    value = config_lib.value_at(config, key)
    line = f'{key} = {value!r}'
    if key in config_lib.DOCS:
      default = config_lib.value_at(defaults, key)
      if default != value:
        line += f'  (default {default!r})'
      lines.append(line)
      lines.append(f'    {config_lib.DOCS[key]} Allowed: {config_lib.allowed(key)}.')
    else:  # set by the config file itself; nothing reads it
      lines.append(f'{line}  (not a key of base_config: no run reads it)')
  return '\n'.join(lines)
