"""Prints the model zoo: architecture, parameters and FLOPs per sample for every name.

    python -m scaling_vlm.zoo                 # a table
    python -m scaling_vlm.zoo --json          # the same as a JSON list
    python -m scaling_vlm.zoo --filter 'mammut_*' --arch mammut
    python -m scaling_vlm.zoo --arch climp    # Mamba towers (width/layers, no heads)

Parameter counts come from the real Flax modules (shape evaluation, no memory used);
FLOPs from `scaling_vlm.flops` (the paper's convention, and training FLOPs for MFU).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys

from scaling_vlm import flops, models
from scaling_vlm.models.config import ModelConfig


def describe(config: ModelConfig) -> dict:
  # Scanned layers trace once per tower: same parameter count, much faster to evaluate.
  params = models.param_count(config)
  v, t = config.vision, config.text
  # Towers without attention (CLIMP's) have no heads: width/layers only.
  heads = (lambda tower: f'/{tower.heads}') if config.spec.attention else (lambda tower: '')
  return {
      'name': config.name,
      'arch': config.arch,
      'params': params,
      'gflops_per_sample': flops.forward_flops(config) / 1e9,
      'train_flops_per_sample': flops.train_flops(config),
      'embed_dim': config.embed_dim,
      'image_size': v.image_size,
      'patch_size': v.patch_size,
      'vision': f'{v.width}/{v.layers}{heads(v)}',
      'text': f'{t.width}/{t.layers}{heads(t)}',
      'context_length': t.context_length,
      'vocab_size': t.vocab_size,
  }


def format_table(rows: list[dict]) -> str:
  columns = [
      ('name', '{}'),
      ('arch', '{}'),
      ('embed_dim', '{}'),
      ('vision', '{}'),
      ('patch_size', '{}'),
      ('text', '{}'),
      ('image_size', '{}'),
      ('params', '{:.2f}M'),
      ('gflops_per_sample', '{:.4g}'),
      ('train_flops_per_sample', '{:.3g}'),
  ]
  scale = {'params': 1e-6}
  cells = [[fmt.format(row[key] * scale.get(key, 1)) for key, fmt in columns] for row in rows]
  headers = [
      'name',
      'arch',
      'embed',
      'vision w/l/h',
      'patch',
      'text w/l/h',
      'px',
      'params',
      'GFLOPs/sample',
      'train FLOPs/sample',
  ]
  widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
  lines = ['  '.join(h.ljust(w) for h, w in zip(headers, widths))]
  lines.append('  '.join('-' * w for w in widths))
  lines += ['  '.join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m scaling_vlm.zoo',
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument('--json', action='store_true', help='print a JSON list instead of a table')
  parser.add_argument('--filter', default='*', help='shell-style pattern on model names')
  parser.add_argument('--arch', choices=sorted(models.ARCHS), help='only this family')
  args = parser.parse_args(argv)
  names = [n for n in models.model_names(args.arch) if fnmatch.fnmatch(n, args.filter)]
  if not names:
    parser.error(
        f'no model name matches --filter {args.filter!r}; '
        f'known names: {", ".join(models.model_names())}'
    )
  rows = [describe(models.get_config(name)) for name in names]
  print(json.dumps(rows, indent=1) if args.json else format_table(rows))
  return 0


if __name__ == '__main__':
  sys.exit(main())
